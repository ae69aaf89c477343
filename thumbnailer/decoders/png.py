"""PNG: decoded strip by strip, each strip reduced as it arrives, instead of into one full-size image."""

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from isal import isal_zlib
from PIL import Image

from thumbnailer.decoders import libspng
from thumbnailer.decoders.strips import StripReducer, thumbnail_size

FORMATS = frozenset({"PNG"})

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURE_LENGTH = len(_SIGNATURE)
_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # colour types, at 8 bits per sample
_COLOUR_TYPES = {mode: colour_type for colour_type, mode in _MODES.items()}
_NO_CRC = bytes(4)
_ZLIB_HEADER = b"\x78\x01"
_STORED_BLOCK_MAX = 0xFFFF
_INFLATE_INPUT = 1 << 14
# Chunks Pillow reads when it loads the pixels, if they come after them (orientation, XMP).
_LATE_METADATA = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt"})


@dataclass(frozen=True)
class PngLayout:
    """What a walk over the chunks of a PNG found (no CRC checks, as Pillow's decoder)."""

    size: tuple[int, int]
    bit_depth: int
    colour_type: int
    interlaced: bool
    animated: bool
    image_data: tuple[memoryview, ...]
    metadata_after_pixels: bool

    @classmethod
    def parse(cls, data: bytes) -> "PngLayout | None":
        """Walk the chunks; None if there is no complete IHDR."""
        view = memoryview(data)
        header = None
        image_data: list[memoryview] = []
        animated = metadata_after = False
        for kind, body, length in _chunks(data):
            if kind == b"IHDR" and length >= 13:
                header = struct.unpack_from(">IIBBBBB", data, body)
            elif kind == b"IDAT":
                image_data.append(view[body : body + length])
            elif kind == b"acTL":
                animated = True
            elif image_data and kind in _LATE_METADATA:
                metadata_after = True
        if header is None:
            return None
        width, height, bit_depth, colour_type, _, _, interlace = header
        return cls(
            (width, height),
            bit_depth,
            colour_type,
            interlace != 0,
            animated,
            tuple(image_data),
            metadata_after,
        )


def _chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset of the body, length) of each complete chunk up to IEND."""
    pos = _SIGNATURE_LENGTH
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if body + length > len(data) or kind == b"IEND":
            return
        yield kind, body, length
        pos = body + length + 4


def reduce(image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image | None:
    """Thumbnail of an 8-bit, non-interlaced, single-frame greyscale or RGB(A) PNG, in strips.

    The image data is inflated here, a strip at a time, by ISA-L (python-isal: 1.6x as fast as
    zlib 1.2, 1.15x as fast as the zlib-ng inside Pillow). Each strip is then unfiltered as a
    stored, uncompressed zlib stream, preceded by the previous strip's last row, unfiltered,
    that the first row's filter refers to: by libspng for RGB and RGBA (its SIMD filters take
    half the time of Pillow's on photos), else by Pillow's PNG decoder. Both stop at the last
    row, before the stream's checksum, so none is written. Colour-keyed (tRNS) images are left
    to the generic path, which turns the key into alpha first.
    """
    png = PngLayout.parse(data)
    if png is None or "transparency" in image.info:
        return None
    mode = _MODES.get(png.colour_type) if png.bit_depth == 8 else None
    if (
        mode != image.mode
        or png.size != image.size
        or png.interlaced
        or png.animated
        or png.metadata_after_pixels
    ):
        return None
    final_size = thumbnail_size(image.size, box)
    if final_size is None:
        return None
    reducer = StripReducer(mode, image.size, final_size)
    if not reducer.reduces:
        return None
    unfilter = _strip_unfilter(mode)
    width, height = image.size
    row_bytes = width * Image.getmodebands(mode) + 1  # + the filter-type byte
    inflated = _Inflater(png.image_data)
    previous_row = None
    top = 0
    while top < height:
        rows = min(reducer.rows_per_strip, height - top)
        stream = [_ZLIB_HEADER]
        if previous_row is not None:
            _append_stored(stream, b"\x00" + previous_row)
        for piece in inflated.read(rows * row_bytes):
            _append_stored(stream, piece)
        context = 0 if previous_row is None else 1
        strip = unfilter(stream, mode, (width, rows + context))
        previous_row = strip.crop((0, rows + context - 1, width, rows + context)).tobytes("raw", mode)
        reducer.add(strip, first_row=context)
        top += rows
    return reducer.result()


def _strip_unfilter(mode: str):
    """unfilter(zlib stream pieces, mode, size) -> Image: libspng's for RGB(A) if it loads, else Pillow's."""
    spng = libspng.load() if mode in libspng.MODES else None
    if spng is None:
        return _unfilter_with_pillow

    def unfilter_with_libspng(stream: list, mode: str, size: tuple[int, int]) -> Image.Image:
        return spng.decode(_minimal_png(stream, mode, size), mode, size)

    return unfilter_with_libspng


def _unfilter_with_pillow(stream: list, mode: str, size: tuple[int, int]) -> Image.Image:
    """Pillow's PNG decoder (inflate and unfilter) over a zlib stream."""
    return Image.frombytes(mode, size, b"".join(stream), "zip", mode)


def _minimal_png(stream: list, mode: str, size: tuple[int, int]) -> bytes:
    """A PNG file of the rows in a zlib stream: signature, IHDR, one IDAT, IEND; CRCs left zero."""
    colour_type = _COLOUR_TYPES[mode]
    header = struct.pack(">IIBBBBB", *size, 8, colour_type, 0, 0, 0)
    length = sum(map(len, stream))
    return b"".join(
        [
            _SIGNATURE,
            struct.pack(">I4s", len(header), b"IHDR"),
            header,
            _NO_CRC,
            struct.pack(">I4s", length, b"IDAT"),
            *stream,
            _NO_CRC,
            struct.pack(">I4s", 0, b"IEND"),
            _NO_CRC,
        ]
    )


class _Inflater:
    """The inflated bytes of a zlib stream split over IDAT chunks, read in pieces on demand."""

    def __init__(self, image_data: tuple[memoryview, ...]):
        self._inflate = isal_zlib.decompressobj()
        self._compressed = (
            chunk[i : i + _INFLATE_INPUT]
            for chunk in image_data
            for i in range(0, len(chunk), _INFLATE_INPUT)
        )
        self._pending: bytes | memoryview = b""

    def read(self, count: int) -> Iterator[bytes]:
        """Yield exactly `count` inflated bytes in pieces of at most one stored block each.

        When max_length caps a call, the decompressor may keep decoded bytes buffered while it
        has no input left, so an empty unconsumed_tail does not mean it has nothing more: it
        is asked again with no new input before the next compressed piece is fed.
        """
        while count:
            piece = self._inflate.decompress(self._pending, min(count, _STORED_BLOCK_MAX))
            self._pending = self._inflate.unconsumed_tail
            if piece:
                count -= len(piece)
                yield piece
            elif self._inflate.eof:
                raise OSError("the PNG image data ends before the last row")
            elif self._pending:
                raise OSError("the PNG inflater made no progress")  # never seen; guards a hang
            else:
                self._pending = next(self._compressed, b"")
                if not self._pending:
                    raise OSError("the PNG image data ends before the last row (truncated file?)")


def _append_stored(stream: list, data: bytes) -> None:
    """Append `data` to a zlib stream as stored (uncompressed) deflate blocks."""
    for start in range(0, len(data), _STORED_BLOCK_MAX):
        block = data[start : start + _STORED_BLOCK_MAX]
        stream += [struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF), block]
