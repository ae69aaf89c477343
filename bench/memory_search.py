"""Worst-case memory of one thumbnail over every kind of source the limits admit; memorySize from it.

    make memory                                  # python bench/memory_search.py (tox -e memory)
    make memory QUICK=1 REV=HEAD                 # --quick --revision HEAD
    make memory MEMORY_ARGS="--only png --timeout 60"

MEMORY_ARGS passes the other options: --max-pixels N, --max-side N, --max-bytes N, --only TEXT,
--timeout S, --out DIR.

Generates sources at the limits into build/memory-search/sources/ (kept between runs; a file is
remade when its parameters or SOURCES_VERSION change): just under MAX_SOURCE_PIXELS in every
shape (square, --max-side wide and tall, and the 50,000,000 x 1, 1 x 50,000,000 and
12,000,000 x 1 that only a side limit refuses) and encoding (PNG in every colour type, 16-bit,
1-bit, palette, Adam7; JPEG baseline and progressive, 4:4:4 and 4:2:0, grey and CMYK; WebP
lossless and lossy with alpha; TIFF in strips, one strip, planes and tiles, deflate or none,
8- and 16-bit; GIF; BMP 32/24/8-bit and RLE), plus "dense" sources filled with noise to just
under MAX_SOURCE_BYTES. A source over MAX_SOURCE_BYTES is reported as not admitted, and the
largest of its kind that fits is measured instead (uncompressed TIFF and BMP).

Each admitted source is thumbnailed by thumbnailer.core.make_thumbnail with the deployed
defaults in a fresh process (bench/memprobe.py --as-function: the process has imported
handler.py and created its S3 client first, as on Lambda). Writes results.json and results.md
(sorted by peak) and prints the worst case and the memory size it needs:
(process baseline + MAX_SOURCE_BYTES + worst extra) x 1.25, rounded up to 1 MB and to 64 MB.
Progress goes to stderr as JSON lines. `--quick`: a representative subset, under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import engines, report  # noqa: E402
from bench import memory_sources as make  # noqa: E402
from bench.corpus import MAX_SOURCE_BYTES, MAX_SOURCE_PIXELS  # noqa: E402
from thumbnailer.core import MAX_SIDE  # noqa: E402  JPEG's and GIF's own format limit
from thumbnailer.logs import json_handler  # noqa: E402

OUT_DIR = REPO_ROOT / "build" / "memory-search"
SOURCES_VERSION = 3  # bump when memory_sources.py or the encodings below make different bytes
MEMPROBE = REPO_ROOT / "bench" / "memprobe.py"
MiB = 1024 * 1024

ROW_12M = 12_000_000
# The longest side each format can hold (libjpeg refuses more than JPEG_MAX_DIMENSION, 65,500).
FORMAT_SIDES = {
    "PNG": 2**31 - 1,
    "JPEG": 65_500,
    "WEBP": 16_383,
    "GIF": 65_535,
    "TIFF": 2**32 - 1,
    "BMP": 2**31 - 1,
    # HEVC and AV1 encoders (x265, aom) take pictures up to 16,384 px wide; larger photos are tiled grids.
    "HEIF": 16_383,
    "AVIF": 16_383,
}
# A probe may not map more than this (Lambda's largest memory size is 10,240 MB): a runaway
# case fails with MemoryError instead of taking the machine.
PROBE_ADDRESS_SPACE = 12 << 30
PROBE_TIMEOUT_S = 600
# Fractions of random samples tried for dense sources (steps of 2), and the file size aimed at.
NOISE_STEPS = tuple(2.0**-k for k in range(12, -1, -1))
DENSE_TARGET = 0.96  # of MAX_SOURCE_BYTES

LOG = logging.getLogger("bench.memory")


# Shapes: the size of a source of `pixels` pixels whose longest side may be `side`.

SHAPES: dict[str, Callable[[int, int], tuple[int, int]]] = {
    "square": lambda pixels, side: (math.isqrt(pixels),) * 2,
    "wide": lambda pixels, side: (side, pixels // side),
    "tall": lambda pixels, side: (pixels // side, side),
    "row": lambda pixels, side: (pixels, 1),
    "column": lambda pixels, side: (1, pixels),
    "row-12m": lambda pixels, side: (min(pixels, ROW_12M), 1),
}
EXTREME_SHAPES = ("row", "column", "row-12m")  # longer than any side limit would allow
BLOCK_SHAPES = ("square", "wide", "tall")


# Encodings: a name, a label and how to make the bytes of a size (with a fraction of noise).


@dataclass(frozen=True)
class Encoding:
    name: str  # starts with the format: png-, jpeg-, webp-, heif-, avif-, tiff-, gif-, bmp-
    label: str
    make: Callable[[tuple[int, int], float], bytes]
    shapes: tuple[str, ...] = tuple(SHAPES)
    dense: bool = False  # noise up to just under MAX_SOURCE_BYTES: the file size is the point

    @property
    def format(self) -> str:
        return self.name.split("-")[0].upper()

    @property
    def suffix(self) -> str:
        return {"JPEG": "jpg", "TIFF": "tif"}.get(self.format, self.format.lower())


def _png(mode: str, bits: int = 8, *, interlaced: bool = False):
    def encode(size, noise):
        samples = make.pixels(size, mode, bits, noise=noise)
        return make.png(samples, make.PNG_COLOUR_TYPES[mode], bits, interlaced=interlaced)

    return encode


def _png_bilevel(size, noise):
    return make.png(make.pixels(size, "1", noise=noise)[:, :, 0] >> 7, 0, 1)


def _png_palette(*, transparency: bool, interlaced: bool = False):
    def encode(size, noise):
        alphas = bytes(range(256)) if transparency else None  # a different alpha per entry
        index = make.indices(size, noise=noise)
        return make.png(index, 3, 8, palette=make.palette(), transparency=alphas, interlaced=interlaced)

    return encode


def _jpeg(mode: str, *, progressive: bool, subsampling: int = 0):
    def encode(size, noise):
        options = {"quality": 90, "progressive": progressive}
        if mode == "RGB":
            options["subsampling"] = subsampling  # 0: 4:4:4, 2: 4:2:0
        return make.pillow(make.pixels(size, mode, noise=noise), mode, "JPEG", **options)

    return encode


def _webp(mode: str, *, lossless: bool):
    def encode(size, noise):
        options = {"lossless": True, "quality": 0, "method": 0} if lossless else {"quality": 80, "method": 0}
        return make.pillow(make.pixels(size, mode, noise=noise), mode, "WEBP", **options)

    return encode


def _heif(mode: str):
    def encode(size, noise):
        import pillow_heif  # the HEVC encoder of the full pillow-heif (dev and bench dependencies)

        pillow_heif.register_heif_opener()
        return make.pillow(
            make.pixels(size, mode, noise=noise), mode, "HEIF", quality=30, enc_params={"preset": "ultrafast"}
        )

    return encode


def _avif(mode: str):
    def encode(size, noise):
        return make.pillow(make.pixels(size, mode, noise=noise), mode, "AVIF", quality=30, speed=10)

    return encode


def _tiff(mode: str, bits: int = 8, *, deflate: bool = True, layout: str = "strips"):
    """layout: strips (64 KiB each, as Pillow and libtiff write them), one-strip, planar (64 KiB
    strips of one band each), tiles (256 x 256) or one-tile (the image, sides rounded up to 16)."""

    def encode(size, noise):
        samples = (
            make.indices(size, noise=noise) if mode == "P" else make.pixels(size, mode, bits, noise=noise)
        )
        row_bytes = size[0] * samples[0, 0].size * bits // 8
        options = {
            "strips": {"rows_per_strip": max(1, 65536 // row_bytes)},
            "one-strip": {},
            "planar": {"planar": True, "rows_per_strip": max(1, 65536 * samples[0, 0].size // row_bytes)},
            "tiles": {"tile": (256, 256)},
            "one-tile": {"tile": (-(-size[0] // 16) * 16, -(-size[1] // 16) * 16)},
        }[layout]
        colormap = make.palette() if mode == "P" else None
        alpha = mode in ("LA", "RGBA")
        return make.tiff(
            samples, make.PHOTOMETRIC[mode], deflate=deflate, alpha=alpha, colormap=colormap, **options
        )

    return encode


def _gif(*, transparency: bool):
    def encode(size, noise):
        options = {"transparency": 0} if transparency else {}
        return make.pillow(make.indices(size, noise=noise), "P", "GIF", colours=make.palette(), **options)

    return encode


def _bmp(mode: str):
    def encode(size, noise):
        if mode == "P":
            return make.pillow(make.indices(size, noise=noise), "P", "BMP", colours=make.palette())
        return make.pillow(make.pixels(size, mode, noise=noise), mode, "BMP")

    return encode


def _bmp_rle(bits: int):
    def encode(size, noise):
        colours = 1 << bits
        return make.bmp_rle(make.indices(size, colours, noise=noise), make.palette(colours), bits)

    return encode


_DEFLATE_256_TILES = "deflate, 256 x 256 tiles"
_BASE_ENCODINGS = (
    Encoding("png-rgb8", "PNG RGB 8-bit", _png("RGB")),
    Encoding("png-rgba8", "PNG RGBA 8-bit", _png("RGBA")),
    Encoding("png-l8", "PNG grey 8-bit", _png("L")),
    Encoding("png-la8", "PNG grey + alpha 8-bit", _png("LA")),
    Encoding("png-rgb16", "PNG RGB 16-bit", _png("RGB", 16)),
    Encoding("png-rgba16", "PNG RGBA 16-bit", _png("RGBA", 16)),
    Encoding("png-l16", "PNG grey 16-bit", _png("L", 16)),
    Encoding("png-1bit", "PNG 1-bit grey", _png_bilevel),
    Encoding("png-p256", "PNG palette, 256 colours", _png_palette(transparency=False)),
    Encoding("png-p256-trns", "PNG palette, 256 colours + tRNS", _png_palette(transparency=True)),
    Encoding("png-rgb8-adam7", "PNG RGB 8-bit, interlaced", _png("RGB", interlaced=True)),
    Encoding("png-rgba8-adam7", "PNG RGBA 8-bit, interlaced", _png("RGBA", interlaced=True)),
    Encoding("png-rgba16-adam7", "PNG RGBA 16-bit, interlaced", _png("RGBA", 16, interlaced=True)),
    Encoding(
        "png-p256-trns-adam7",
        "PNG palette + tRNS, interlaced",
        _png_palette(transparency=True, interlaced=True),
    ),
    Encoding("jpeg-baseline-444", "JPEG baseline 4:4:4", _jpeg("RGB", progressive=False)),
    Encoding("jpeg-baseline-420", "JPEG baseline 4:2:0", _jpeg("RGB", progressive=False, subsampling=2)),
    Encoding("jpeg-progressive-444", "JPEG progressive 4:4:4", _jpeg("RGB", progressive=True)),
    Encoding("jpeg-progressive-420", "JPEG progressive 4:2:0", _jpeg("RGB", progressive=True, subsampling=2)),
    Encoding("jpeg-grey-baseline", "JPEG grey baseline", _jpeg("L", progressive=False)),
    Encoding("jpeg-grey-progressive", "JPEG grey progressive", _jpeg("L", progressive=True)),
    Encoding("jpeg-cmyk-baseline", "JPEG CMYK baseline", _jpeg("CMYK", progressive=False)),
    Encoding("jpeg-cmyk-progressive", "JPEG CMYK progressive", _jpeg("CMYK", progressive=True)),
    Encoding("webp-lossless-rgb", "WebP lossless RGB", _webp("RGB", lossless=True)),
    Encoding("webp-lossless-rgba", "WebP lossless RGBA", _webp("RGBA", lossless=True)),
    Encoding("webp-lossy-rgb", "WebP lossy RGB", _webp("RGB", lossless=False)),
    Encoding("webp-lossy-rgba", "WebP lossy + alpha", _webp("RGBA", lossless=False)),
    Encoding("heif-rgb", "HEIC (HEVC) RGB", _heif("RGB"), BLOCK_SHAPES),
    Encoding("heif-rgba", "HEIC (HEVC) RGBA", _heif("RGBA"), BLOCK_SHAPES),
    Encoding("avif-rgb", "AVIF RGB", _avif("RGB"), BLOCK_SHAPES),
    Encoding("avif-rgba", "AVIF RGBA", _avif("RGBA"), BLOCK_SHAPES),
    Encoding(
        "tiff-rgb8-raw-strips", "TIFF RGB 8-bit, uncompressed, 64 KiB strips", _tiff("RGB", deflate=False)
    ),
    Encoding("tiff-rgb8-strips", "TIFF RGB 8-bit, deflate, 64 KiB strips", _tiff("RGB")),
    Encoding("tiff-rgb8-one-strip", "TIFF RGB 8-bit, deflate, one strip", _tiff("RGB", layout="one-strip")),
    Encoding("tiff-rgb8-planar", "TIFF RGB 8-bit, deflate, planar strips", _tiff("RGB", layout="planar")),
    Encoding("tiff-rgba8-strips", "TIFF RGBA 8-bit, deflate, 64 KiB strips", _tiff("RGBA")),
    Encoding("tiff-rgb16-strips", "TIFF RGB 16-bit, deflate, 64 KiB strips", _tiff("RGB", 16)),
    Encoding("tiff-rgba16-strips", "TIFF RGBA 16-bit, deflate, 64 KiB strips", _tiff("RGBA", 16)),
    Encoding(
        "tiff-rgba16-one-strip", "TIFF RGBA 16-bit, deflate, one strip", _tiff("RGBA", 16, layout="one-strip")
    ),
    Encoding("tiff-l16-strips", "TIFF grey 16-bit, deflate, 64 KiB strips", _tiff("L", 16)),
    Encoding("tiff-p256-strips", "TIFF palette, 256 colours, deflate, 64 KiB strips", _tiff("P")),
    Encoding("tiff-cmyk-strips", "TIFF CMYK 8-bit, deflate, 64 KiB strips", _tiff("CMYK")),
    # Tiles of 16 rows or more: a one-pixel-high image would be stored 16 times over.
    Encoding(
        "tiff-rgb8-raw-tiles",
        "TIFF RGB 8-bit, uncompressed, 256 x 256 tiles",
        _tiff("RGB", deflate=False, layout="tiles"),
        BLOCK_SHAPES,
    ),
    Encoding(
        "tiff-rgb8-tiles", f"TIFF RGB 8-bit, {_DEFLATE_256_TILES}", _tiff("RGB", layout="tiles"), BLOCK_SHAPES
    ),
    Encoding(
        "tiff-rgba8-tiles",
        f"TIFF RGBA 8-bit, {_DEFLATE_256_TILES}",
        _tiff("RGBA", layout="tiles"),
        BLOCK_SHAPES,
    ),
    Encoding(
        "tiff-rgba16-tiles",
        f"TIFF RGBA 16-bit, {_DEFLATE_256_TILES}",
        _tiff("RGBA", 16, layout="tiles"),
        BLOCK_SHAPES,
    ),
    Encoding(
        "tiff-rgb8-one-tile",
        "TIFF RGB 8-bit, deflate, one tile",
        _tiff("RGB", layout="one-tile"),
        BLOCK_SHAPES,
    ),
    Encoding("gif-p256", "GIF, 256 colours", _gif(transparency=False)),
    Encoding("gif-p256-transparent", "GIF, 256 colours + transparency", _gif(transparency=True)),
    Encoding("bmp-rgba32", "BMP 32-bit (BGRA)", _bmp("RGBA")),
    Encoding("bmp-rgb24", "BMP 24-bit", _bmp("RGB")),
    Encoding("bmp-p256", "BMP 8-bit palette", _bmp("P")),
    Encoding("bmp-rle8", "BMP 8-bit RLE", _bmp_rle(8)),
    Encoding("bmp-rle4", "BMP 4-bit RLE", _bmp_rle(4)),
)
# Dense variants, square only: for decoders that copy or buffer the file, its size is the point.
_DENSE = (
    "png-rgba8",
    "png-p256-trns",
    "jpeg-baseline-420",
    "jpeg-progressive-444",
    "webp-lossless-rgba",
    "webp-lossy-rgba",
    "tiff-rgba8-strips",
    "gif-p256",
)
ENCODINGS: tuple[Encoding, ...] = _BASE_ENCODINGS + tuple(
    Encoding(f"{base.name}-dense", f"{base.label}, dense", base.make, ("square",), dense=True)
    for base in _BASE_ENCODINGS
    if base.name in _DENSE
)

# The --quick subset: the worst cases of the full search and one of every decoder family.
QUICK_CASES = (
    "png-rgb8/row-12m",
    "png-rgba8/row",
    "png-rgb8/square",
    "png-rgba16/square",
    "png-p256-trns/wide",
    "png-rgba8-adam7/square",
    "jpeg-progressive-444/square",
    "jpeg-cmyk-progressive/wide",
    "webp-lossy-rgba/square",
    "webp-lossy-rgba-dense/square",
    "heif-rgba/square",
    "avif-rgba/square",
    "tiff-rgba8-strips/square",
    "tiff-rgba16-one-strip/square",
    "tiff-rgb8-tiles/tall",
    "gif-p256/tall",
    "bmp-rle8/square",
    "bmp-rgba32/square",
)


@dataclass
class Source:
    """One generated candidate: admitted (a file to measure) or not (only its size is kept)."""

    case: str
    encoding: str
    label: str
    shape: str
    width: int
    height: int
    file_bytes: int
    admitted: bool
    path: str | None = None
    noise: float = 0
    fitted: bool = False  # shrunk until it fits under MAX_SOURCE_BYTES
    key: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_side: int
    max_bytes: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a representative subset, under 3 minutes")
    parser.add_argument("--max-pixels", type=int, default=MAX_SOURCE_PIXELS, help="MAX_SOURCE_PIXELS")
    parser.add_argument("--max-bytes", type=int, default=MAX_SOURCE_BYTES, help="MAX_SOURCE_BYTES")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help="side of the wide and tall shapes")
    parser.add_argument(
        "--revision", metavar="REV", help="measure handler.py + thumbnailer/ as of this git revision"
    )
    parser.add_argument("--only", metavar="TEXT", help="only cases whose name contains TEXT")
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_S, help="seconds per probe")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where results.json/.md go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, handlers=[json_handler()])
    started, started_at = time.monotonic(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    limits = Limits(args.max_pixels, args.max_side, args.max_bytes)
    code_dir = None
    if args.revision:
        code_dir = report.export_revision(args.revision, ("handler.py", "thumbnailer"), OUT_DIR / "code")
        LOG.info("measuring the code of %s (%s) from %s", args.revision, code_dir.name, code_dir)

    not_made: list[dict] = []
    sources = generate(select(limits, args.quick, args.only), limits, OUT_DIR / "sources", not_made)
    generated_s = time.monotonic() - started
    LOG.info("sources ready in %.0f s: %d admitted, %d not", generated_s, *_count_admitted(sources))
    measurements = [measure(source, code_dir, args.timeout) for source in sources if source.admitted]
    derived = derive(measurements, limits)
    results = {
        "command": "python bench/memory_search.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": started_at,
        "revision": report.git_revision(),
        "code": args.revision or "working tree",
        "machine": report.machine(),
        "versions": engines.versions() | {"numpy": np.__version__},
        "limits": asdict(limits),
        "quick": args.quick,
        "derived": derived,
        "measurements": measurements,
        "not_admitted": [_brief(source) for source in sources if not source.admitted],
        "not_representable": not_representable(limits),
        "not_made": not_made,
        "generate_s": round(generated_s, 1),
        "duration_s": round(time.monotonic() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    LOG.info("wrote %s in %.0f s", args.out / "results.md", results["duration_s"])
    print(summary(results, args.out / "results.md"))
    return 0


# Which cases


def select(limits: Limits, quick: bool, only: str | None) -> list[tuple[Encoding, str, tuple[int, int]]]:
    """(encoding, shape, size) of every case the format can represent."""
    cases = []
    for encoding in ENCODINGS:
        side = min(limits.max_side, FORMAT_SIDES[encoding.format])
        for shape in encoding.shapes:
            size = SHAPES[shape](limits.max_pixels, side)
            name = f"{encoding.name}/{shape}"
            if max(size) > FORMAT_SIDES[encoding.format]:
                continue  # listed by not_representable()
            if (quick and name not in QUICK_CASES) or (only and only not in name):
                continue
            cases.append((encoding, shape, size))
    return cases


def not_representable(limits: Limits) -> list[str]:
    """Formats that cannot hold the extreme shapes, and the wide shape they get instead."""
    notes = []
    for fmt, longest in FORMAT_SIDES.items():
        side = min(longest, limits.max_side)
        if longest < limits.max_pixels:
            notes.append(
                f"{fmt}: longest side {longest:,} px, so no {'/'.join(EXTREME_SHAPES)} sources; "
                f"wide and tall are {side:,} x {limits.max_pixels // side:,}"
            )
    return notes


# Sources


def generate(cases: list, limits: Limits, directory: Path, failures: list) -> list[Source]:
    """Make the sources that are missing or stale; return them in case order (what could not be
    made goes to `failures`)."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    sources = []
    for encoding, shape, size in cases:
        key = {"version": SOURCES_VERSION, "size": list(size), "max_bytes": limits.max_bytes}
        name = f"{encoding.name}/{shape}"
        entry = f"{name} {size[0]}x{size[1]}, at most {limits.max_bytes} bytes"  # one per parameter set
        made = [Source(**item) for item in manifest.get(entry, [])]
        if not made or made[0].key != key or any(s.admitted and not Path(s.path).is_file() for s in made):
            started = time.monotonic()
            try:
                made = _make(encoding, shape, size, limits, directory)
            except Exception as exc:  # an encoder's limit: reported, and the search goes on
                LOG.exception("could not make %s", name)
                failures.append({"case": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            for source in made:
                source.key = key
            manifest[entry] = [asdict(source) for source in made]
            manifest_path.write_text(json.dumps(manifest, indent=1))
            LOG.info(
                "made %s %s: %s in %.1f s",
                name,
                "x".join(map(str, size)),
                ", ".join(f"{s.width}x{s.height} {s.file_bytes / MiB:.1f} MiB" for s in made),
                time.monotonic() - started,
            )
        sources += made
    return sources


def _make(
    encoding: Encoding, shape: str, size: tuple[int, int], limits: Limits, directory: Path
) -> list[Source]:
    """The source at the pixel limit; if it is too big, also the largest of its kind that fits."""
    noise = _dense_noise(encoding, shape, size, limits) if encoding.dense else 0
    data = encoding.make(size, noise)
    for _ in range(4 if encoding.dense else 0):  # an estimate too high: less noise, not fewer pixels
        if len(data) <= limits.max_bytes:
            break
        noise *= 0.85
        data = encoding.make(size, noise)
    made = [_source(encoding, shape, size, data, noise, limits, directory)]
    fitted_size = size
    for _ in range(6):
        if len(data) <= limits.max_bytes:
            break
        side = min(limits.max_side, FORMAT_SIDES[encoding.format])
        pixels = fitted_size[0] * fitted_size[1]
        fitted_size = SHAPES[shape](int(pixels * limits.max_bytes / len(data) * 0.995), side)
        data = encoding.make(fitted_size, noise)
        if len(data) <= limits.max_bytes:
            made.append(_source(encoding, shape, fitted_size, data, noise, limits, directory, fitted=True))
    return made


def _source(encoding, shape, size, data, noise, limits, directory, *, fitted=False) -> Source:
    """A Source for `data`, written to `directory` if the byte limit admits it."""
    case = f"{encoding.name}/{shape}" + ("/fitted" if fitted else "")
    admitted = len(data) <= limits.max_bytes
    path = directory / f"{case.replace('/', '--')}-{size[0]}x{size[1]}.{encoding.suffix}"
    if admitted:
        path.write_bytes(data)
    return Source(
        case=case,
        encoding=encoding.name,
        label=encoding.label,
        shape=shape,
        width=size[0],
        height=size[1],
        file_bytes=len(data),
        admitted=admitted,
        path=str(path) if admitted else None,
        noise=noise,
        fitted=fitted,
    )


def _dense_noise(encoding: Encoding, shape: str, size: tuple[int, int], limits: Limits) -> float:
    """The fraction of random samples that brings the file just under the byte limit.

    Estimated from sources of 1/16 the pixels: the smallest of NOISE_STEPS that is too big,
    then linear interpolation from the step below it.
    """
    side = min(limits.max_side, FORMAT_SIDES[encoding.format])
    sample = SHAPES[shape](size[0] * size[1] // 16, side)
    scale = size[0] * size[1] / (sample[0] * sample[1])
    target = limits.max_bytes * DENSE_TARGET
    below, below_bytes = 0.0, len(encoding.make(sample, 0)) * scale
    for noise in NOISE_STEPS:
        estimate = len(encoding.make(sample, noise)) * scale
        if estimate > target:
            return below + (noise - below) * (target - below_bytes) / (estimate - below_bytes)
        below, below_bytes = noise, estimate
    return below


def _count_admitted(sources: list[Source]) -> tuple[int, int]:
    admitted = sum(source.admitted for source in sources)
    return admitted, len(sources) - admitted


def _brief(source: Source) -> dict:
    return {
        "case": source.case,
        "encoding": source.label,
        "width": source.width,
        "height": source.height,
        "file_mib": round(source.file_bytes / MiB, 1),
    }


# Measurement


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PROBE_ADDRESS_SPACE, PROBE_ADDRESS_SPACE))


def measure(source: Source, code_dir: Path | None, timeout: float) -> dict:
    """One fresh process (bench/memprobe.py --as-function) thumbnails the source."""
    command = [sys.executable, str(MEMPROBE), "ours", source.path, "--as-function"]
    if code_dir:
        command += ["--code", str(code_dir)]
    env = os.environ | {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    row = {
        "case": source.case,
        "encoding": source.label,
        "shape": source.shape,
        "width": source.width,
        "height": source.height,
        "file_mib": round(source.file_bytes / MiB, 2),
        "noise": source.noise,
        "fitted": source.fitted,
    }
    started = time.monotonic()
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
            preexec_fn=_limit_address_space,
        )
    except subprocess.TimeoutExpired:
        row |= {"outcome": "timeout", "error": f"no result after {timeout:.0f} s"}
        LOG.warning("%s: timeout", source.case)
        return row
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        row |= {"outcome": "crash", "error": f"exit {result.returncode}: {result.stderr.strip()[-500:]}"}
        LOG.warning("%s: probe exited %d", source.case, result.returncode)
        return row
    probe = json.loads(lines[-1])
    row |= {
        "outcome": probe["outcome"],
        "reason": probe.get("reason"),
        "error": probe.get("error"),
        "output": probe.get("output"),
        "extra_mib": round(probe["extra_kib"] / 1024, 1),
        "peak_mib": round(probe["peak_kib"] / 1024, 1),
        "baseline_mib": round(probe["baseline_kib"] / 1024, 1),
        "before_mib": round(probe["rss_before_kib"] / 1024, 1),
        "seconds": round(probe["first_call_ms"] / 1000, 2),
        "process_s": round(time.monotonic() - started, 1),
    }
    LOG.info(
        "%s %dx%d: %s, +%.1f MiB, peak %.1f MiB, %.2f s",
        source.case,
        source.width,
        source.height,
        _outcome(row),
        row["extra_mib"],
        row["peak_mib"],
        row["seconds"],
    )
    return row


# Derivation and report


def derive(measurements: list[dict], limits: Limits) -> dict:
    """Memory size from the worst extra: over everything admitted, and over sides <= --max-side."""
    measured = [row for row in measurements if "extra_mib" in row]
    if not measured:
        return {}
    baseline = statistics.median(row["baseline_mib"] for row in measured)
    source_mib = limits.max_bytes / MiB
    derived: dict = {"baseline_mib": baseline, "source_mib": round(source_mib, 1)}
    within_side = [row for row in measured if max(row["width"], row["height"]) <= limits.max_side]
    for key, rows in (("all_admitted", measured), ("within_max_side", within_side)):
        if rows:
            worst = max(rows, key=lambda row: row["extra_mib"])
            name = f"{worst['case']}, {worst['width']:,} x {worst['height']:,}"
            derived[key] = {"worst": worst} | report.memory_size(
                baseline, worst["extra_mib"], name, source_mib
            )
    deployed = report.deployed_memory_mb()
    if deployed:
        derived["deployed_mb"] = deployed
        derived["over_deployed"] = [
            row["case"]
            for row in sorted(measured, key=lambda row: -row["extra_mib"])
            if report.needed_mib(baseline, source_mib, row["extra_mib"]) > deployed
        ]
    derived["unmeasured"] = [row["case"] for row in measurements if "extra_mib" not in row]
    return derived


def _outcome(row: dict) -> str:
    if row["outcome"] == "thumbnail" and row.get("output"):
        output = row["output"]
        return f"thumbnail {output['width']}x{output['height']} {output['format']}"
    if row["outcome"] == "rejected":
        return f"rejected: {row['reason']}"
    return f"{row['outcome']}: {(row.get('error') or '')[:80]}"


def _shape(row: dict) -> str:
    fitted = ", fitted to the byte limit" if row.get("fitted") else ""
    return f"{row['shape']} {row['width']:,} x {row['height']:,}{fitted}"


def markdown(results: dict) -> str:
    """results.md: the memory size, every measurement by peak, what was not admitted."""
    machine, limits = results["machine"], results["limits"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    lines = [
        "# Worst-case memory search",
        "",
        f"`{results['command']}` on {results['started']} ({results['duration_s']:.0f} s, "
        f"{results['generate_s']:.0f} s of it making sources), commit {results['revision']}, "
        f"code measured: {results['code']}.",
        "",
        f"Limits: {limits['max_pixels']:,} pixels, {limits['max_bytes']:,} bytes; wide and tall shapes "
        f"{limits['max_side']:,} px long. Machine: {machine['cpu']}, {machine['cores']} cores, load average "
        f"{machine['load_average']}. Versions: Python {machine['python']}, {versions}.",
        "",
        "Each source is thumbnailed by `make_thumbnail` (deployed defaults) in a fresh process that "
        "imported handler.py and created its S3 client first. Extra: peak RSS (VmHWM) minus RSS "
        "before the call, which already holds the file's bytes.",
        "",
        "## Memory size",
        "",
        *_derivation_lines(results["derived"], limits),
        "",
        "## Every admitted source, by peak",
        "",
        "| case | shape | encoding | file MiB | outcome | extra MiB | peak RSS MiB | seconds |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    for row in sorted(results["measurements"], key=lambda row: -row.get("peak_mib", math.inf)):
        cells = (row.get("extra_mib", "-"), row.get("peak_mib", "-"), row.get("seconds", "-"))
        lines.append(
            f"| {row['case']} | {_shape(row)} | {row['encoding']} | {row['file_mib']:.1f} | "
            f"{_outcome(row)} | " + " | ".join(map(str, cells)) + " |"
        )
    if results["not_admitted"]:
        lines += ["", "## Not admitted (over MAX_SOURCE_BYTES)", ""]
        lines += ["| case | shape | encoding | file MiB |", "|---|---|---|---:|"]
        lines += [
            f"| {item['case']} | {item['width']:,} x {item['height']:,} | {item['encoding']} | "
            f"{item['file_mib']:.1f} |"
            for item in results["not_admitted"]
        ]
    if results["not_made"]:
        lines += ["", "## Could not be made", ""]
        lines += [f"- {item['case']}: {item['error']}" for item in results["not_made"]]
    if results["not_representable"]:
        lines += ["", "## Not representable", ""] + [f"- {note}" for note in results["not_representable"]]
    return "\n".join(lines) + "\n"


def _derivation_lines(derived: dict, limits: dict) -> list[str]:
    lines = []
    titles = {
        "all_admitted": "Everything admitted",
        "within_max_side": f"Sides up to {limits['max_side']:,} px only",
    }
    for key, title in titles.items():
        if key in derived:
            item = derived[key]
            lines.append(
                f"- {title}: **{item['minimum_mb']} MB** ({item['memory_size_mb']} MB in 64 MB steps): "
                f"{item['arithmetic']}."
            )
    if derived.get("deployed_mb"):
        over = derived["over_deployed"]
        verdict = f"{len(over)} case(s) need more: {', '.join(over)}" if over else "enough for every case"
        lines.append(f"- serverless.yml's memorySize {derived['deployed_mb']} MB: {verdict}.")
    if derived.get("unmeasured"):
        lines.append(f"- Not measured (timeout or crash): {', '.join(derived['unmeasured'])}.")
    return lines


def summary(results: dict, table: Path) -> str:
    """What stdout gets: the worst cases and the derivation."""
    derived = results["derived"]
    lines = [f"memory search: {len(results['measurements'])} sources in {results['duration_s']:.0f} s"]
    for key, title in (("all_admitted", "everything admitted"), ("within_max_side", "sides <= --max-side")):
        if key in derived:
            worst = derived[key]["worst"]
            lines += [
                f"{title}: worst {worst['case']} ({worst['encoding']}, {worst['width']:,} x "
                f"{worst['height']:,}, {worst['file_mib']} MiB): {_outcome(worst)}, "
                f"+{worst['extra_mib']} MiB, peak {worst['peak_mib']} MiB",
                f"  {derived[key]['arithmetic']}",
            ]
    if derived.get("deployed_mb"):
        over = derived["over_deployed"]
        lines.append(f"memorySize {derived['deployed_mb']} MB is too small for {len(over)} source(s)")
    lines.append(f"table: {table}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
