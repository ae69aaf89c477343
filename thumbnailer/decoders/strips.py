"""Faster decoding for the core: the same thumbnails with less work or memory.

Each function does, for one kind of source, what `Image.thumbnail()` on the fully decoded image
does: the same pixels for JPEG and PNG; for WebP, libwebp's own reduced-size decoding (what libvips
uses), within the golden tolerance. Each returns None, or the image unchanged, when it does not
apply, and the core's generic path runs. Measured by `make bench` (README, Performance).
"""

import functools
import io
import math
import re
import struct
from dataclasses import dataclass

import PIL
from isal import isal_zlib
from PIL import Image

# Image.thumbnail's default: shrink by a whole factor (box average) down to at least twice the
# final size, then resample. The fast paths below reproduce that two-step geometry exactly.
_REDUCING_GAP = 2.0
# Rows decoded and reduced at a time by the streaming paths: small enough to stay in cache.
_STRIP_BYTES = 1 << 20


def thumbnail_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int] | None:
    """The size Image.thumbnail(box) gives an image of `size` (its rounding), None if it fits."""
    x, y = math.floor(box[0]), math.floor(box[1])
    width, height = size
    if x >= width and y >= height:
        return None
    aspect = width / height

    def round_aspect(number: float, key) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    if x / y >= aspect:
        x = round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


class StripReducer:
    """Image.resize(final_size, LANCZOS, reducing_gap=2.0) for an image that arrives in strips.

    Same factors, same box, same premultiplied alpha as resize() applies to the whole image, so
    the same pixels; only one strip (about _STRIP_BYTES) is ever held at full resolution. Strips
    hold a multiple of the vertical factor rows, so no reduced row straddles two strips.
    """

    def __init__(self, mode: str, size: tuple[int, int], final_size: tuple[int, int]):
        width, height = size
        self.mode, self.size, self.final_size = mode, size, final_size
        self.factor = (
            int(width / final_size[0] / _REDUCING_GAP) or 1,
            int(height / final_size[1] / _REDUCING_GAP) or 1,
        )
        self.reduced_size = (-(-width // self.factor[0]), -(-height // self.factor[1]))
        row_bytes = width * Image.getmodebands(mode)
        self.rows_per_strip = max(1, _STRIP_BYTES // row_bytes // self.factor[1]) * self.factor[1]
        self._work_mode = {"RGBA": "RGBa", "LA": "La"}.get(mode, mode)
        self._reduced: Image.Image | None = None
        self._next_row = 0

    @property
    def reduces(self) -> bool:
        """False when resize() would not reduce either: nothing to gain from strips."""
        return self.factor != (1, 1)

    def add(self, strip: Image.Image, first_row: int = 0) -> None:
        """Reduce the strip's rows from `first_row` on (the rows before are context only)."""
        if self._reduced is None:
            self._reduced = Image.new(self._work_mode, self.reduced_size)
        if strip.mode != self._work_mode:
            strip = strip.convert(self._work_mode)
        reduced = strip.reduce(self.factor, box=(0, first_row, strip.width, strip.height))
        self._reduced.paste(reduced, (0, self._next_row))
        self._next_row += reduced.height

    def result(self) -> Image.Image:
        """The final Lanczos step, from the reduced image, back in the source's mode."""
        if self._reduced is None or self._next_row != self.reduced_size[1]:
            raise OSError("the image data ended before the last row")
        box = (0, 0, self.size[0] / self.factor[0], self.size[1] / self.factor[1])
        image = self._reduced.resize(self.final_size, Image.Resampling.LANCZOS, box)
        return image.convert(self.mode) if image.mode != self.mode else image


def reduce_in_bands(image: Image.Image, reducer: StripReducer, convert=lambda band: band) -> Image.Image:
    """Feed a fully decoded image to `reducer` band by band, converting each band first."""
    width, height = image.size
    for top in range(0, height, reducer.rows_per_strip):
        reducer.add(convert(image.crop((0, top, width, min(height, top + reducer.rows_per_strip)))))
    return reducer.result()


# JPEG: progressive files decoded at 1/8 scale without the scans that cannot change the pixels.

# A marker: 0xFF followed by neither a stuffed zero, a restart number, nor a fill byte.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_OTHER_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# An AC Huffman table (class 1, slot 0) with a single one-bit code '0' for symbol 0x00: EOB.
_JPEG_EOB_ONLY_TABLE = b"\xff\xc4\x00\x14\x10\x01" + bytes(15) + b"\x00"


def without_unused_scans(image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image:
    """The progressive JPEG `image`, reopened without the scans its thumbnail does not need.

    thumbnail(box) asks libjpeg for a 1/8-scale decode when the image is at least 16 times the
    box. At that scale each 8x8 block of a component becomes one pixel computed from its DC
    coefficient alone (a 1x1 IDCT), so the AC scans, most of a progressive file, are decoded
    for nothing. Components that libjpeg upsamples through a larger IDCT instead (4:2:0 chroma
    gets 2x2) read AC coefficients and keep all their scans. The decode gives the same pixels
    byte for byte (see _jpeg_scans_for_one_eighth); any other JPEG is returned unchanged.
    """
    if image.format != "JPEG" or not image.info.get("progressive"):
        return image
    width, height = image.size
    requested = (int(box[0] * _REDUCING_GAP), int(box[1] * _REDUCING_GAP))
    if min(width // requested[0], height // requested[1]) < 8:  # JpegImageFile.draft's choice
        return image
    trimmed = _jpeg_scans_for_one_eighth(data)
    if trimmed is None:
        return image
    reopened = Image.open(io.BytesIO(trimmed), formats=("JPEG",))
    if reopened.size != image.size or reopened.mode != image.mode:
        return image
    reopened.info = dict(image.info)
    return reopened


def _jpeg_scans_for_one_eighth(data: bytes) -> bytes | None:
    """`data` with the AC scans of DC-only components replaced by one all-zero AC scan each.

    The replacement scan is needed: coefficients never sent count as unknown, and libjpeg then
    estimates them from neighbouring DC values ("block smoothing"), changing the pixels; a scan
    that sends them as zero keeps the decode identical. None for anything unusual (another
    frame type, restart intervals, damaged structure): the caller then decodes the original.
    """
    try:
        return _trim_jpeg_scans(data)
    except (struct.error, IndexError, ValueError):
        return None


def _trim_jpeg_scans(data: bytes) -> bytes | None:
    view = memoryview(data)
    kept = [view[:2]]
    components: list[tuple[int, int, int]] = []
    frame_size = (0, 0)
    pos, end_of_data = 2, len(data)
    while True:
        if pos + 2 > end_of_data or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if pos + 4 > end_of_data or 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xDC):
            return None
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if end > end_of_data or marker in _JPEG_OTHER_FRAMES:
            return None
        if marker == 0xC2:  # SOF2: progressive, Huffman
            height, width, count = struct.unpack_from(">xHHB", data, pos + 4)
            frame_size = (width, height)
            components = [
                (data[pos + 10 + 3 * i], data[pos + 11 + 3 * i] >> 4, data[pos + 11 + 3 * i] & 15)
                for i in range(count)
            ]
        elif marker == 0xDD and struct.unpack_from(">H", data, pos + 4)[0]:  # DRI, non-zero
            return None
        elif marker == 0xDA:  # SOS, then entropy-coded data up to the next marker
            if not components:
                return None
            count = data[pos + 4]
            ids = {data[pos + 5 + 2 * i] for i in range(count)}
            spectral_start = data[pos + 5 + 2 * count]
            found = _JPEG_MARKER.search(data, end)
            scan_end = found.start() if found else end_of_data
            if spectral_start == 0 or ids & _ids_needing_ac(components):
                kept.append(view[pos:scan_end])
            pos = scan_end
            continue
        kept.append(view[pos:end])
        pos = end
    h_max = max(h for _, h, _ in components)
    v_max = max(v for _, _, v in components)
    needing_ac = _ids_needing_ac(components)
    width, height = frame_size
    for component_id, h, v in components:
        if component_id in needing_ac:
            continue
        blocks = -(-width * h // (h_max * 8)) * -(-height * v // (v_max * 8))
        kept += [
            _JPEG_EOB_ONLY_TABLE,
            b"\xff\xda\x00\x08\x01" + bytes((component_id, 0x00, 1, 63, 0x00)),
            bytes(-(-blocks // 8)),  # one '0' bit (EOB) per block
        ]
    if len(needing_ac) == len(components):
        return None
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


# PNG: decoded strip by strip, each reduced as it arrives, instead of into one full-size image.


@dataclass(frozen=True)
class PngLayout:
    """What the chunk walk of a PNG found (no CRC checks, as Pillow's decoder)."""

    size: tuple[int, int]
    bit_depth: int
    colour_type: int
    interlaced: bool
    animated: bool
    image_data: tuple[memoryview, ...]
    # eXIf or text chunks after the pixel data: Pillow reads them (orientation, XMP) on load().
    metadata_after_pixels: bool

    @classmethod
    def parse(cls, data: bytes) -> "PngLayout | None":
        """Walk the chunks; None if the structure is damaged (the generic path reports it)."""
        try:
            return cls._parse(data)
        except (struct.error, IndexError, ValueError):
            return None

    @classmethod
    def _parse(cls, data: bytes) -> "PngLayout | None":
        view = memoryview(data)
        header = None
        image_data: list[memoryview] = []
        animated = metadata_after = False
        pos = 8
        while pos + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            body = pos + 8
            if body + length > len(data):
                break
            if kind == b"IHDR" and length >= 13:
                header = struct.unpack_from(">IIBBBBB", data, body)
            elif kind == b"IDAT":
                image_data.append(view[body : body + length])
            elif kind == b"acTL":
                animated = True
            elif kind == b"IEND":
                break
            elif image_data and kind in (b"eXIf", b"tEXt", b"zTXt", b"iTXt"):
                metadata_after = True
            pos = body + length + 4
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


_PNG_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # colour types, at 8 bits per sample
_ZLIB_HEADER = b"\x78\x01"
_STORED_BLOCK_MAX = 0xFFFF
_INFLATE_INPUT = 1 << 14


def png_thumbnail(image: Image.Image, png: "PngLayout | None", box: tuple[int, int]) -> Image.Image | None:
    """Thumbnail of an 8-bit, non-interlaced, single-frame greyscale or RGB(A) PNG, in strips.

    The image data is inflated here, a strip at a time, by ISA-L (python-isal: 1.6x as fast as
    zlib 1.2, 1.15x as fast as the zlib-ng inside Pillow); each strip goes back to Pillow's PNG
    decoder (which undoes the row filters) as a stored, uncompressed zlib stream, preceded by
    the previous strip's last row, unfiltered, that the first row's filter refers to. Pillow
    stops at the last row, before the stream's checksum, so none is written.
    """
    if png is None:
        return None
    mode = _PNG_MODES.get(png.colour_type) if png.bit_depth == 8 else None
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
    width, height = image.size
    row_bytes = width * Image.getmodebands(mode) + 1  # + the filter-type byte
    inflate = isal_zlib.decompressobj()
    compressed = (
        chunk[i : i + _INFLATE_INPUT]
        for chunk in png.image_data
        for i in range(0, len(chunk), _INFLATE_INPUT)
    )
    pending: bytes | memoryview = b""
    previous_row = None
    top = 0
    while top < height:
        rows = min(reducer.rows_per_strip, height - top)
        stream = [_ZLIB_HEADER]
        if previous_row is not None:
            _append_stored(stream, b"\x00" + previous_row)
        needed = rows * row_bytes
        while needed:
            if not pending:
                pending = next(compressed, b"")
                if not pending:
                    raise OSError("the PNG image data ends before the last row (truncated file?)")
            piece = inflate.decompress(pending, min(needed, _STORED_BLOCK_MAX))
            pending = inflate.unconsumed_tail
            if piece:
                _append_stored(stream, piece)
                needed -= len(piece)
            elif inflate.eof:
                raise OSError("the PNG image data ends before the last row")
        context = 0 if previous_row is None else 1
        strip = Image.frombytes(mode, (width, rows + context), b"".join(stream), "zip", mode)
        previous_row = strip.crop((0, rows + context - 1, width, rows + context)).tobytes()
        reducer.add(strip, first_row=context)
        top += rows
    thumbnail = reducer.result()
    thumbnail.info = image.info  # what thumbnail() keeps: ICC profile, tRNS colour, ...
    return thumbnail


def _append_stored(stream: list, data: bytes) -> None:
    """Append `data` to a zlib stream as stored (uncompressed) deflate blocks."""
    for start in range(0, len(data), _STORED_BLOCK_MAX):
        block = data[start : start + _STORED_BLOCK_MAX]
        stream += [struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF), block]


# WebP: libwebp scales while it decodes; Pillow's plugin only decodes at full size.


def webp_thumbnail(image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image | None:
    """Thumbnail of a still WebP from libwebp's reduced-size decode, or None.

    Opaque and lossless images are decoded straight to the reduced size (libwebp averages the
    pixels each output pixel covers, alpha-weighted for lossless), then Lanczos-filtered to
    the final size. Lossy images with alpha are not: libwebp's scaler averages their colours
    without weighting by alpha, which fringes edges; they are decoded at full size into one
    buffer and reduced in premultiplied strips, exactly like the generic path.
    """
    if getattr(image, "is_animated", False):
        return None
    final_size = thumbnail_size(image.size, box)
    if final_size is None:
        return None
    reducer = StripReducer(image.mode, image.size, final_size)
    libwebp = _libwebp()
    if not reducer.reduces or libwebp is None or image.mode not in ("RGB", "RGBA"):
        return None
    features = libwebp.features(data)
    if features is None or features.has_animation or (features.width, features.height) != image.size:
        return None
    if image.mode == "RGBA" and features.format != _WEBP_LOSSLESS:
        thumbnail = reduce_in_bands(libwebp.decode(data, image.size, image.size, "RGBA"), reducer)
    else:
        scaled = libwebp.decode(data, image.size, reducer.reduced_size, image.mode)
        thumbnail = scaled.resize(final_size, Image.Resampling.LANCZOS)
    thumbnail.info.update(image.info)
    return thumbnail


_WEBP_LOSSLESS = 2  # WebPBitstreamFeatures.format
_WEBP_COLOURSPACES = {"RGB": 0, "RGBA": 1}  # WEBP_CSP_MODE: MODE_RGB, MODE_RGBA (not premultiplied)


@functools.cache
def _libwebp() -> "_LibWebP | None":
    """The libwebp Pillow is linked with (its wheel bundles it in pillow.libs/), or None."""
    import ctypes
    import ctypes.util
    from pathlib import Path

    bundled = sorted((Path(PIL.__file__).resolve().parent.parent / "pillow.libs").glob("libwebp-*.so*"))
    path = str(bundled[0]) if bundled else ctypes.util.find_library("webp")
    if not path:
        return None
    try:
        return _LibWebP(ctypes.CDLL(path))
    except (OSError, AttributeError):  # not loadable, missing symbols, or another ABI
        return None


class _LibWebP:
    """The few libwebp decoding calls needed, through ctypes (decode.h, ABI 0x0209)."""

    ABI_VERSION = 0x0209

    def __init__(self, library):
        import ctypes

        self._ctypes = ctypes
        c_int, c_void_p, c_size_t, c_uint32 = ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32

        class Features(ctypes.Structure):
            _fields_ = [
                ("width", c_int),
                ("height", c_int),
                ("has_alpha", c_int),
                ("has_animation", c_int),
                ("format", c_int),
                ("pad", c_uint32 * 5),
            ]

        class RGBABuffer(ctypes.Structure):
            _fields_ = [("rgba", c_void_p), ("stride", c_int), ("size", c_size_t)]

        class YUVABuffer(ctypes.Structure):
            _fields_ = [
                *((name, c_void_p) for name in ("y", "u", "v", "a")),
                *((name, c_int) for name in ("y_stride", "u_stride", "v_stride", "a_stride")),
                *((name, c_size_t) for name in ("y_size", "u_size", "v_size", "a_size")),
            ]

        class Buffers(ctypes.Union):
            _fields_ = [("RGBA", RGBABuffer), ("YUVA", YUVABuffer)]

        class DecBuffer(ctypes.Structure):
            _fields_ = [
                ("colorspace", c_int),
                ("width", c_int),
                ("height", c_int),
                ("is_external_memory", c_int),
                ("u", Buffers),
                ("pad", c_uint32 * 4),
                ("private_memory", c_void_p),
            ]

        class Options(ctypes.Structure):
            _fields_ = [
                *(
                    (name, c_int)
                    for name in (
                        "bypass_filtering",
                        "no_fancy_upsampling",
                        "use_cropping",
                        "crop_left",
                        "crop_top",
                        "crop_width",
                        "crop_height",
                        "use_scaling",
                        "scaled_width",
                        "scaled_height",
                        "use_threads",
                        "dithering_strength",
                        "flip",
                        "alpha_dithering_strength",
                    )
                ),
                ("pad", c_uint32 * 5),
            ]

        class Config(ctypes.Structure):
            _fields_ = [("input", Features), ("output", DecBuffer), ("options", Options)]

        self._features_type, self._config_type = Features, Config
        self._init = library.WebPInitDecoderConfigInternal
        self._init.argtypes = [ctypes.POINTER(Config), c_int]
        self._get_features = library.WebPGetFeaturesInternal
        self._get_features.argtypes = [ctypes.c_char_p, c_size_t, ctypes.POINTER(Features), c_int]
        self._decode = library.WebPDecode
        self._decode.argtypes = [ctypes.c_char_p, c_size_t, ctypes.POINTER(Config)]
        if not self._init(ctypes.byref(Config()), self.ABI_VERSION):
            raise OSError("libwebp has another decoder ABI")

    def features(self, data: bytes):
        """WebPBitstreamFeatures of `data`, or None if libwebp cannot parse its header."""
        features = self._features_type()
        status = self._get_features(data, len(data), self._ctypes.byref(features), self.ABI_VERSION)
        return features if status == 0 else None

    def decode(self, data: bytes, size: tuple[int, int], out_size: tuple[int, int], mode: str) -> Image.Image:
        """Decode `data` (of `size`) scaled to `out_size`, into an image of `mode` (RGB or RGBA)."""
        ctypes = self._ctypes
        config = self._config_type()
        if not self._init(ctypes.byref(config), self.ABI_VERSION):
            raise OSError("libwebp refused its decoder configuration")
        width, height = out_size
        stride = width * len(mode)
        pixels = bytearray(stride * height)
        target = (ctypes.c_ubyte * len(pixels)).from_buffer(pixels)
        output = config.output
        output.colorspace = _WEBP_COLOURSPACES[mode]
        output.is_external_memory = 1
        output.u.RGBA.rgba, output.u.RGBA.stride, output.u.RGBA.size = (
            ctypes.addressof(target),
            stride,
            len(pixels),
        )
        if out_size != size:
            config.options.use_scaling = 1
            config.options.scaled_width, config.options.scaled_height = width, height
        status = self._decode(data, len(data), ctypes.byref(config))
        del target  # releases the export of `pixels`
        if status != 0:
            raise OSError(f"libwebp could not decode the image (VP8StatusCode {status})")
        if mode == "RGBA":  # shares `pixels`, no copy
            return Image.frombuffer("RGBA", out_size, pixels, "raw", "RGBA", 0, 1)
        return Image.frombytes(mode, out_size, bytes(pixels))
