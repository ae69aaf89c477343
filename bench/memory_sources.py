"""Pixels and encoders for bench/memory_search.py: large sources, made fast with numpy.

Pixels are gradients with a checkerboard and stripes: structure that compresses, so that 50 MP
fit under 50 MiB in every compressed format; `noise` replaces a fraction of the samples by random
values where the file size is the point (the file grows about linearly with it). Pillow writes
JPEG, WebP, GIF and plain BMP. PNG (every colour type, 1-16 bits, Adam7 interlacing), TIFF (strips
or tiles, planar, deflate with predictor) and RLE-compressed BMP are written here: Pillow cannot
write interlaced PNG, tiled TIFF or RLE BMP.

    .venv/bin/tox exec -e bench -- python bench/memory_sources.py    # every encoder round-trips
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zlib

import numpy as np
from isal import isal_zlib
from PIL import Image, ImageFile

_CHUNK_PIXELS = 1 << 22  # pixels computed at a time: keeps numpy's temporaries small
_IDAT_BYTES = 1 << 23
BANDS = {"1": 1, "L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}


# Pixels


def _blocks(size: tuple[int, int]):
    """(rows, columns, x, y) per block of about _CHUNK_PIXELS: x as (1, n), y as (m, 1) uint32."""
    width, height = size
    columns = min(width, _CHUNK_PIXELS)
    rows = max(1, _CHUNK_PIXELS // columns)
    for top in range(0, height, rows):
        y = np.arange(top, min(top + rows, height), dtype=np.uint32)[:, None]
        for left in range(0, width, columns):
            x = np.arange(left, min(left + columns, width), dtype=np.uint32)[None, :]
            yield slice(top, top + y.shape[0]), slice(left, left + x.shape[1]), x, y


def _ramp(position: np.ndarray, length: int) -> np.ndarray:
    """0..255 along a side (0 for a side of one pixel)."""
    return (position.astype(np.uint64) * 255 // max(length - 1, 1)).astype(np.uint32)


def _alpha(x: np.ndarray, y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Transparent margin, opaque middle, a half-transparent band across (8-bit values)."""
    width, height = size
    inside = np.ones(np.broadcast_shapes(x.shape, y.shape), bool)
    if width >= 8:
        inside &= (8 * x >= width) & (8 * x < 7 * width)
    if height >= 8:
        inside &= (8 * y >= height) & (8 * y < 7 * height)
    along, length = (y, height) if height >= 5 else (x, width)
    band = (5 * along >= 2 * length) & (5 * along < 3 * length)
    return np.where(inside, np.where(band, 128, 255), 0).astype(np.uint32)


def _channels(x: np.ndarray, y: np.ndarray, size: tuple[int, int], mode: str) -> list[np.ndarray]:
    """8-bit values of each band of `mode` at (x, y), broadcast."""
    across, down = _ramp(x, size[0]), _ramp(y, size[1])
    checker = ((x >> 5) ^ (y >> 5)) & 7  # 32-px squares, 8 levels
    stripes = ((x >> 3) & 15) * 4
    red = (across * 3 >> 2) + checker * 8
    green = (down * 3 >> 2) + stripes
    blue = ((across + down) * 3 >> 3) + checker * 8
    return {
        "1": lambda: [(checker & 1 ^ (across >> 5) & 1) * 255],
        "L": lambda: [((across + down) * 3 >> 3) + checker * 4 + stripes],
        "LA": lambda: [((across + down) * 3 >> 3) + checker * 4 + stripes, _alpha(x, y, size)],
        "RGB": lambda: [red, green, blue],
        "RGBA": lambda: [red, green, blue, _alpha(x, y, size)],
        "CMYK": lambda: [255 - red, 255 - green, 255 - blue, checker * 16 + stripes],
    }[mode]()


def pixels(size: tuple[int, int], mode: str, bits: int = 8, *, noise: float = 0, seed: int = 0) -> np.ndarray:
    """An (height, width, bands) uint8 or uint16 array; `noise`: the fraction of random samples.

    16-bit samples hold the 8-bit value in the high byte and a fine texture in the low byte.
    """
    width, height = size
    out = np.empty((height, width, BANDS[mode]), np.uint16 if bits == 16 else np.uint8)
    rng = np.random.default_rng(seed)
    for rows, columns, x, y in _blocks(size):
        for band, values in enumerate(_channels(x, y, size, mode)):
            values = np.broadcast_to(values, (y.shape[0], x.shape[1]))
            if bits == 16:
                values = values << 8 | (x * 7 + y * 13) & 255
            out[rows, columns, band] = _noisy(values, noise, 1 << bits, rng)
    return out


def indices(size: tuple[int, int], colours: int = 256, *, noise: float = 0, seed: int = 0) -> np.ndarray:
    """An (height, width) uint8 array of palette indices using every one of `colours`."""
    width, height = size
    out = np.empty((height, width), np.uint8)
    rng = np.random.default_rng(seed)
    for rows, columns, x, y in _blocks(size):
        values = ((_ramp(x, width) + _ramp(y, height)) >> 1) + (((x >> 5) ^ (y >> 5)) & 7) * 37
        values = np.broadcast_to(values, (y.shape[0], x.shape[1]))
        out[rows, columns] = _noisy(values % colours, noise, colours, rng)
    return out


def _noisy(values: np.ndarray, noise: float, levels: int, rng: np.random.Generator) -> np.ndarray:
    """`values` with a `noise` fraction of them replaced by uniform random values below `levels`."""
    if not noise:
        return values
    replaced = rng.random(values.shape) < noise
    return np.where(replaced, rng.integers(0, levels, values.shape, dtype=np.uint32), values)


def palette(colours: int = 256, seed: int = 0) -> np.ndarray:
    """`colours` distinct RGB entries, (colours, 3) uint8."""
    rng = np.random.default_rng(seed)
    entries = rng.integers(0, 256, (colours, 3), dtype=np.uint8)
    entries[:, 0] = np.arange(colours) * (256 // colours)  # distinct whatever the draw
    return entries


# PNG

PNG_COLOUR_TYPES = {"L": 0, "RGB": 2, "P": 3, "LA": 4, "RGBA": 6}
# Adam7: (first column, first row, column step, row step) of each of the seven passes.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png(
    image: np.ndarray,
    colour_type: int,
    bit_depth: int,
    *,
    palette: np.ndarray | None = None,
    transparency: bytes | None = None,
    interlaced: bool = False,
) -> bytes:
    """A PNG of `image` ((h, w, bands) samples, or (h, w) palette indices or 0/1 for 1-bit)."""
    height, width = image.shape[:2]
    chunks = [
        _png_chunk(
            b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, int(interlaced))
        )
    ]
    if palette is not None:
        chunks.append(_png_chunk(b"PLTE", palette.tobytes()))
    if transparency is not None:
        chunks.append(_png_chunk(b"tRNS", transparency))
    compressor = isal_zlib.compressobj(2)
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    stream = []
    for left, top, step_x, step_y in passes:
        reduced = image[top::step_y, left::step_x]
        if reduced.size:
            stream.append(compressor.compress(_png_filtered(reduced, bit_depth)))
    stream.append(compressor.flush())
    data = b"".join(stream)
    chunks += [_png_chunk(b"IDAT", data[i : i + _IDAT_BYTES]) for i in range(0, len(data), _IDAT_BYTES)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_filtered(image: np.ndarray, bit_depth: int) -> memoryview:
    """Scanlines with the Sub filter (Up for a one-pixel-wide image), each behind its type byte."""
    height, width = image.shape[:2]
    if bit_depth < 8:
        rows = np.packbits(image.reshape(height, width).astype(np.uint8), axis=1, bitorder="big")
        pixel_bytes = 1
    else:
        samples = image.reshape(height, -1)
        rows = samples.astype(">u2").view(np.uint8) if bit_depth == 16 else samples
        pixel_bytes = rows.shape[1] // width
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    if width > 1:
        filtered[:, 0] = 1
        filtered[:, 1 : 1 + pixel_bytes] = rows[:, :pixel_bytes]
        np.subtract(rows[:, pixel_bytes:], rows[:, :-pixel_bytes], out=filtered[:, 1 + pixel_bytes :])
    else:
        filtered[:, 0] = 2
        filtered[:1, 1:] = rows[:1]
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    return memoryview(filtered).cast("B")


# TIFF

_SHORT, _LONG = 3, 4
PHOTOMETRIC = {"L": 1, "LA": 1, "RGB": 2, "RGBA": 2, "P": 3, "CMYK": 5}


def tiff(
    image: np.ndarray,
    photometric: int,
    *,
    deflate: bool = True,
    rows_per_strip: int | None = None,
    tile: tuple[int, int] | None = None,
    planar: bool = False,
    alpha: bool = False,
    colormap: np.ndarray | None = None,
) -> bytes:
    """A little-endian TIFF of (h, w, bands) samples: strips of `rows_per_strip` rows (default:
    whole image) or `tile` (width, height, multiples of 16) tiles; deflate uses predictor 2."""
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, bands = image.shape
    bits = image.dtype.itemsize * 8
    blocks = _tiff_tiles(image, tile) if tile else _tiff_strips(image, rows_per_strip or height, planar)
    out = io.BytesIO()
    out.write(b"II*\x00\x00\x00\x00\x00")
    offsets, counts = [], []
    for block in blocks:
        data = _tiff_compress(block) if deflate else np.ascontiguousarray(block).tobytes()
        offsets.append(out.tell())
        counts.append(len(data))
        out.write(data)
        if out.tell() % 2:
            out.write(b"\x00")
    tags = {
        256: (_LONG, [width]),
        257: (_LONG, [height]),
        258: (_SHORT, [bits] * bands),
        259: (_SHORT, [8 if deflate else 1]),
        262: (_SHORT, [photometric]),
        277: (_SHORT, [bands]),
        284: (_SHORT, [2 if planar else 1]),
    }
    if tile:
        tags |= {
            322: (_LONG, [tile[0]]),
            323: (_LONG, [tile[1]]),
            324: (_LONG, offsets),
            325: (_LONG, counts),
        }
    else:
        tags |= {273: (_LONG, offsets), 278: (_LONG, [rows_per_strip or height]), 279: (_LONG, counts)}
    if deflate:
        tags[317] = (_SHORT, [2])
    if colormap is not None:
        tags[320] = (_SHORT, [int(v) * 257 for v in colormap.T.reshape(-1)])
    if alpha:
        tags[338] = (_SHORT, [2])  # unassociated alpha
    _tiff_ifd(out, tags)
    return out.getvalue()


def _tiff_strips(image: np.ndarray, rows: int, planar: bool):
    planes = [image[:, :, band : band + 1] for band in range(image.shape[2])] if planar else [image]
    for plane in planes:
        for top in range(0, image.shape[0], rows):
            yield plane[top : top + rows]


def _tiff_tiles(image: np.ndarray, tile: tuple[int, int]):
    tile_width, tile_height = tile
    for top in range(0, image.shape[0], tile_height):
        for left in range(0, image.shape[1], tile_width):
            block = image[top : top + tile_height, left : left + tile_width]
            if block.shape[:2] != (tile_height, tile_width):  # edge tiles are stored whole
                pad = ((0, tile_height - block.shape[0]), (0, tile_width - block.shape[1]), (0, 0))
                block = np.pad(block, pad, mode="edge")
            yield block


def _tiff_compress(block: np.ndarray) -> bytes:
    """Predictor 2 (horizontal differencing per band, in sample arithmetic), then deflate."""
    predicted = block.copy()
    np.subtract(block[:, 1:], block[:, :-1], out=predicted[:, 1:])
    return isal_zlib.compress(predicted.astype("<" + predicted.dtype.str[1:], copy=False).tobytes(), 2)


def _tiff_ifd(out: io.BytesIO, tags: dict[int, tuple[int, list[int]]]) -> None:
    """Write the IFD at the end of `out` and point the header at it."""
    ifd_at = out.tell()
    extra_at = ifd_at + 2 + 12 * len(tags) + 4
    entries, extra = [], []
    for tag, (kind, values) in sorted(tags.items()):
        packed = struct.pack(f"<{len(values)}{'H' if kind == _SHORT else 'I'}", *values)
        if len(packed) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\x00"))
        else:
            entries.append(struct.pack("<HHII", tag, kind, len(values), extra_at + sum(map(len, extra))))
            extra.append(packed)
    out.write(struct.pack("<H", len(tags)) + b"".join(entries) + b"\x00\x00\x00\x00" + b"".join(extra))
    out.seek(4)
    out.write(struct.pack("<I", ifd_at))


# BMP with run-length encoding (BI_RLE8, BI_RLE4)


def bmp_rle(image: np.ndarray, colours: np.ndarray, bits: int) -> bytes:
    """A bottom-up BMP of palette indices (< 2**bits) in RLE8 or RLE4: runs of one index,
    at most 255 pixels each, an end-of-line after every row and an end-of-bitmap."""
    height, width = image.shape
    flat = image[::-1].reshape(-1)
    row_start = np.zeros(flat.size, bool)
    row_start[::width] = True
    changes = np.flatnonzero(row_start | np.concatenate(([True], flat[1:] != flat[:-1])))
    lengths = np.diff(np.append(changes, flat.size))
    pieces = -(-lengths // 255)
    run = np.repeat(np.arange(changes.size), pieces)
    within = np.arange(run.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    piece_lengths = np.minimum(255, lengths[run] - within * 255)
    piece_rows = changes[run] // width
    values = flat[changes[run]]
    if bits == 4:
        values = values << 4 | values
    body = np.zeros(2 * (run.size + height) + 2, np.uint8)
    at = 2 * (np.arange(run.size) + piece_rows)
    body[at], body[at + 1] = piece_lengths, values
    body[-1] = 1  # end of bitmap; every end of line is the (0, 0) already there
    table = np.zeros((len(colours), 4), np.uint8)
    table[:, :3] = colours[:, ::-1]
    header_bytes = 14 + 40 + table.size
    info = struct.pack(
        "<IiiHHIIiiII",
        40,
        width,
        height,
        1,
        bits,
        1 if bits == 8 else 2,
        body.size,
        2835,
        2835,
        len(colours),
        0,
    )
    header = b"BM" + struct.pack("<IHHI", header_bytes + body.size, 0, 0, header_bytes)
    return header + info + table.tobytes() + body.tobytes()


# Pillow's encoders


def pillow(array: np.ndarray, mode: str, fmt: str, *, colours: np.ndarray | None = None, **options) -> bytes:
    """`array` saved by Pillow as `fmt` (mode P takes `colours` as its palette)."""
    height, width = array.shape[:2]
    image = Image.frombuffer(mode, (width, height), np.ascontiguousarray(array), "raw", mode, 0, 1)
    if colours is not None:
        image.putpalette(colours.tobytes())
    # Pillow gives libjpeg one output buffer of about a byte per pixel for a progressive JPEG,
    # which noise outgrows ("Suspension not allowed here"): MAXBLOCK is its lower bound.
    default_block, ImageFile.MAXBLOCK = ImageFile.MAXBLOCK, max(ImageFile.MAXBLOCK, 2 * array.nbytes)
    try:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()
    finally:
        ImageFile.MAXBLOCK = default_block


def _check() -> int:
    """Round-trip small images through every encoder here and Pillow's decoders."""
    size = (37, 29)
    failures = []
    colours = palette()

    def expect(name: str, data: bytes, mode: str, wanted: np.ndarray) -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            got = np.asarray(image.convert(mode) if image.mode != mode else image)
        if got.shape != wanted.shape or not np.array_equal(got, wanted):
            failures.append(name)

    for mode in ("L", "LA", "RGB", "RGBA"):
        for interlaced in (False, True):
            array = pixels(size, mode, noise=0.3)
            wanted = array[:, :, 0] if mode == "L" else array
            expect(
                f"png {mode} {interlaced}",
                png(array, PNG_COLOUR_TYPES[mode], 8, interlaced=interlaced),
                mode,
                wanted,
            )
    grey16 = pixels(size, "L", 16, noise=0.5)
    for interlaced in (False, True):
        expect(
            f"png I;16 {interlaced}",
            png(grey16, 0, 16, interlaced=interlaced),
            "I",
            grey16[:, :, 0].astype(np.int32),
        )
    index = indices(size, noise=0.5)
    expect("png P", png(index, 3, 8, palette=colours), "P", index)
    bilevel = pixels(size, "1")[:, :, 0] // 255
    expect("png 1-bit", png(bilevel, 0, 1), "L", bilevel * 255)
    rgba = pixels(size, "RGBA", noise=0.5)
    for layout in ({}, {"rows_per_strip": 5}, {"tile": (16, 16)}, {"planar": True, "rows_per_strip": 4}):
        for deflate in (False, True):
            data = tiff(rgba, 2, deflate=deflate, alpha=True, **layout)
            expect(f"tiff {layout} {deflate}", data, "RGBA", rgba)
    expect("tiff P", tiff(index, 3, colormap=colours), "P", index)
    rgb16 = pixels(size, "RGB", 16, noise=0.5)
    expect("tiff RGB 16-bit", tiff(rgb16, 2, rows_per_strip=3), "RGB", (rgb16 >> 8).astype(np.uint8))
    expect("tiff I;16", tiff(grey16, 1, tile=(16, 32)), "I", grey16[:, :, 0].astype(np.int32))
    wide = np.repeat(indices((5, 3)), 200, axis=1)  # runs longer than 255 pixels
    for bits in (8, 4):
        for source in (index, wide):
            small = source & ((1 << bits) - 1)
            expect(f"bmp rle{bits} {small.shape}", bmp_rle(small, colours[: 1 << bits], bits), "P", small)
    print("failed: " + ", ".join(failures) if failures else "every encoder round-trips")
    return 1 if failures else 0


if __name__ == "__main__":
    argparse.ArgumentParser(description="Check that every encoder round-trips through Pillow.").parse_args()
    sys.exit(_check())
