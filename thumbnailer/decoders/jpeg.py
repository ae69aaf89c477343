"""JPEG: the reduction, the scan count (a decode-cost guard) and progressive files reduced from
their DC scans.

The scan count and the DC-only files walk the marker segments themselves, without decoding anything.
"""

import io
import re
import struct
from collections.abc import Iterator

from PIL import Image

from thumbnailer.decoders.strips import REDUCING_GAP, thumbnail_size

FORMATS = frozenset({"JPEG"})  # not MPO: its later images follow the first EOI

# A marker: 0xFF followed by neither a stuffed zero, a restart number, nor a fill byte.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI, _SOF2, _DRI = 0xDA, 0xD9, 0xC2, 0xDD
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})
# Sequential frames (baseline, extended, lossless; Huffman or arithmetic): no progressive scans.
_SEQUENTIAL_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD, 0xCF})
# Frame types other than SOF2 (progressive Huffman), and DNL: _dc_only leaves those files alone.
_DC_ONLY_DECLINES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xDC})
# An AC Huffman table (class 1, slot 0) with a single one-bit code '0' for symbol 0x00: EOB.
_EOB_ONLY_TABLE = b"\xff\xc4\x00\x14\x10\x01" + bytes(15) + b"\x00"
# Compressed bytes handed to libjpeg per call: all of them. Pillow's default, 64 KiB a call,
# suspends and resumes the decoder at each block's end: 3-6 % slower from 0.3 to 24 MP. Costs a
# transient copy of the file's compressed data (Pillow reads it from the BytesIO).
_DECODE_BLOCK = 1 << 30


def thumbnail(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """`image` (a JPEG, not yet loaded) reduced into `box`: a reduced-scale decode, then Lanczos.

    As Image.thumbnail(box, LANCZOS), but the scale libjpeg decodes at is chosen from the
    thumbnail's size, not the box's: the strongest reduction (1/2, 1/4 or 1/8) that still leaves
    twice the thumbnail's size on both sides, the reducing gap resize() keeps for every other
    format, so the final Lanczos step always reduces by at least 2. thumbnail() keeps twice the box instead,
    which for a 4:3 picture means twice the scale a 128x96 thumbnail needs: a 640x480 photo is
    decoded at full size, then box-filtered. Decoded at 1/2 it takes 20 % less time, and is as
    close to an exact Lanczos from full resolution (same luma SSIM) and as sharp.
    """
    final_size = thumbnail_size(image.size, box)
    if final_size is None:
        return image
    image.decodermaxblock = _DECODE_BLOCK
    requested = (int(final_size[0] * REDUCING_GAP), int(final_size[1] * REDUCING_GAP))
    drafted = image.draft(None, requested)
    area = drafted[1] if drafted else None
    return image.resize(final_size, Image.Resampling.LANCZOS, box=area, reducing_gap=REDUCING_GAP)


def count_scans(data: bytes) -> int:
    """How many scans (SOS segments) libjpeg would decode, counted as its marker reader finds them.

    libjpeg decodes every scan of a progressive file over all the blocks it covers, so a small
    file of many empty scans costs seconds to minutes of CPU (a "scan bomb"). Bytes between
    segments are skipped up to the next marker, as libjpeg does, so padding cannot hide scans.
    A sequential frame counts as one scan without reading further: libjpeg refuses more scans
    than components there. Never raises: damaged structure ends the count.
    """
    scans = 0
    for marker, _, _ in _segments(data):
        if marker in _SEQUENTIAL_FRAMES:
            return 1  # libjpeg reads each component of a sequential frame in one scan, or fails
        scans += marker == _SOS
    return scans


def _segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each segment after SOI; a scan's end includes its entropy data."""
    end_of_data = len(data)
    pos = 2
    while pos + 4 <= end_of_data:
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):
            found = _MARKER.search(data, pos + 1)  # resynchronise, as libjpeg's next_marker()
            if found is None:
                return
            pos = found.start()
            continue
        marker = data[pos + 1]
        if marker == _EOI:
            return
        if marker in _STANDALONE:
            pos += 2
            continue
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if marker == _SOS:
            found = _MARKER.search(data, end)
            end = found.start() if found else end_of_data
        yield marker, pos, min(end, end_of_data)
        pos = end


def reduce(image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image | None:
    """thumbnail(image, box) of a progressive JPEG decoded without the scans it does not need.

    thumbnail() asks libjpeg for a 1/8-scale decode when the image is at least 16 times the
    thumbnail. At that scale each 8x8 block of a component becomes one pixel computed from its DC
    coefficient alone (a 1x1 IDCT), so the AC scans, most of a progressive file, are decoded
    for nothing. Components that libjpeg upsamples through a larger IDCT instead (4:2:0 chroma
    gets 2x2) read AC coefficients and keep all their scans. The decode gives the same pixels
    byte for byte (see _dc_only); None for any other JPEG.
    """
    if not image.info.get("progressive"):
        return None
    final_size = thumbnail_size(image.size, box)
    if final_size is None:
        return None
    width, height = image.size
    requested = (int(final_size[0] * REDUCING_GAP), int(final_size[1] * REDUCING_GAP))
    if min(width // requested[0], height // requested[1]) < 8:  # JpegImageFile.draft's choice
        return None
    try:
        trimmed = _dc_only(data)
    except (struct.error, IndexError):  # a segment cut short: the generic path reports it
        return None
    if trimmed is None:
        return None
    reopened = Image.open(io.BytesIO(trimmed), formats=("JPEG",))
    if reopened.size != image.size or reopened.mode != image.mode:
        return None
    return thumbnail(reopened, box)


def _dc_only(data: bytes) -> bytes | None:
    """`data` with the AC scans of DC-only components replaced by one all-zero AC scan each.

    The replacement scan is needed: coefficients never sent count as unknown, and libjpeg then
    estimates them from neighbouring DC values ("block smoothing"), changing the pixels; a scan
    that sends them as zero keeps the decode identical. None for anything unusual (another
    frame type, restart intervals, a damaged or truncated structure).
    """
    view = memoryview(data)
    kept = [view[:2]]
    components: list[tuple[int, int, int]] = []
    frame_size = (0, 0)
    expected_start = 2
    for marker, start, end in _segments(data):
        if start != expected_start or marker in _DC_ONLY_DECLINES:
            return None  # bytes skipped between segments, a standalone marker or DNL: decline
        if marker == _DRI and data[start + 4 : start + 6] != b"\x00\x00":
            return None
        expected_start = end
        if marker == _SOF2:
            height, width, count = struct.unpack_from(">xHHB", data, start + 4)
            frame_size = (width, height)
            components = [
                (data[start + 10 + 3 * i], data[start + 11 + 3 * i] >> 4, data[start + 11 + 3 * i] & 15)
                for i in range(count)
            ]
        elif marker == _SOS:
            if not components:
                return None
            count = data[start + 4]
            ids = {data[start + 5 + 2 * i] for i in range(count)}
            spectral_start = data[start + 5 + 2 * count]
            if spectral_start != 0 and not ids & _ids_needing_ac(components):
                continue
        kept.append(view[start:end])
    if not components or data[expected_start : expected_start + 2] != b"\xff\xd9":
        return None
    needing_ac = _ids_needing_ac(components)
    if len(needing_ac) == len(components):
        return None
    h_max = max(h for _, h, _ in components)
    v_max = max(v for _, _, v in components)
    width, height = frame_size
    for component_id, h, v in components:
        if component_id in needing_ac:
            continue
        blocks = -(-width * h // (h_max * 8)) * -(-height * v // (v_max * 8))
        kept += [
            _EOB_ONLY_TABLE,
            b"\xff\xda\x00\x08\x01" + bytes((component_id, 0x00, 1, 63, 0x00)),
            bytes(-(-blocks // 8)),  # one '0' bit (EOB) per block
        ]
    kept.append(b"\xff\xd9")
    return b"".join(kept)


def _ids_needing_ac(components: list[tuple[int, int, int]]) -> set[int]:
    """Components that libjpeg decodes at 1/8 scale with an IDCT larger than 1x1.

    libjpeg (jdmaster.c) doubles a component's IDCT size instead of upsampling it later while
    the maximum sampling factors are multiples of twice its own (4:2:0 chroma: 2x2).
    """
    h_max = max(h for _, h, _ in components)
    v_max = max(v for _, _, v in components)
    return {cid for cid, h, v in components if h_max % (2 * h) == 0 and v_max % (2 * v) == 0}
