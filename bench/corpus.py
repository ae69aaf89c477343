"""The benchmark corpus: photo-like images generated with Pillow into build/bench/corpus/.

Nothing here is committed: the files are regenerated when missing or when CORPUS_VERSION changes
(a manifest records what was made). Content is deterministic (seeded `random`, no timestamps):
a smooth colour field with shapes, mid-frequency texture and fine grain, so that JPEG, PNG and
WebP files have realistic sizes and decode costs (a flat test card would compress to nothing).

    .venv/bin/tox exec -e bench -- python bench/corpus.py --quick    # generate, print the manifest
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT / "build" / "bench" / "corpus"
MANIFEST = CORPUS_DIR / "manifest.json"
CORPUS_VERSION = 1

# The product's limits (serverless.yml: MAX_SOURCE_PIXELS, MAX_SOURCE_BYTES).
MAX_SOURCE_PIXELS = 50_000_000
MAX_SOURCE_BYTES = 52_428_800

SIZES = {
    "0.3mp": (640, 480),
    "2mp": (1632, 1224),
    "12mp": (4000, 3000),
    "24mp": (6000, 4000),
    # The largest 4:3 picture MAX_SOURCE_PIXELS allows: 8660 x 5773 = 49,994,180 pixels.
    "50mp": (8660, 5773),
}
EXIF_ORIENTATION = 0x0112
EXIF_MAKE, EXIF_MODEL = 0x010F, 0x0110

LOG = logging.getLogger("bench.corpus")


@dataclass(frozen=True)
class Spec:
    """One corpus file: what it is and how to make it."""

    name: str
    kind: str  # the row label in the results: "JPEG progressive 12 MP", ...
    size: tuple[int, int]
    make: Callable[[tuple[int, int], int], bytes]
    quick: bool = False  # part of the --quick subset
    limit: bool = False  # the largest sources the limits allow: memory sizing, full run only
    seed: int = 1


@dataclass(frozen=True)
class Item:
    """A generated corpus file."""

    name: str
    kind: str
    width: int
    height: int
    bytes: int
    quick: bool
    limit: bool

    @property
    def path(self) -> Path:
        return CORPUS_DIR / self.name

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def scene(size: tuple[int, int], seed: int, *, grain: int = 14) -> Image.Image:
    """A deterministic photo-like RGB picture: smooth colours, shapes, texture and grain."""
    width, height = size
    rng = random.Random(seed)
    field = Image.new("RGB", (12, 9))
    field.putdata([tuple(rng.randrange(30, 226) for _ in range(3)) for _ in range(12 * 9)])
    image = field.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    unit = max(1, min(width, height) // 40)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(unit, unit * 12), rng.randrange(unit, unit * 12)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        elif shape == 1:
            draw.rectangle((x, y, x + w, y + h), fill=colour)
        else:
            draw.line((x, y, x + w * 3, y - h), fill=colour, width=max(1, unit // 3))
    # Mid-frequency texture (foliage, fabric): coarse noise blown up, then fine grain (sensor noise).
    texture = _noise((max(1, width // 6), max(1, height // 6)), rng, 60).resize(
        size, Image.Resampling.BILINEAR
    )
    image = ImageChops.add(image, Image.merge("RGB", (texture,) * 3), offset=-128)
    if grain:
        fine = _tiled_noise(size, rng, grain)
        image = ImageChops.add(image, Image.merge("RGB", (fine,) * 3), offset=-128)
    return image


def _noise(size: tuple[int, int], rng: random.Random, amplitude: int) -> Image.Image:
    """Uniform noise centred on 128, +-amplitude, as an L image."""
    raw = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    return raw.point(lambda v: 128 - amplitude + v * 2 * amplitude // 255)


def _tiled_noise(size: tuple[int, int], rng: random.Random, amplitude: int) -> Image.Image:
    """Fine grain: a 509x503 noise tile (prime sides, so it never lines up with 8x8 blocks)."""
    tile = _noise((509, 503), rng, amplitude)
    out = Image.new("L", size)
    for top in range(0, size[1], tile.height):
        for left in range(0, size[0], tile.width):
            out.paste(tile, (left, top))
    return out


def alpha_mask(size: tuple[int, int]) -> Image.Image:
    """Transparent background, an opaque rounded subject, a half-transparent band."""
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle(
        (width // 8, height // 8, width * 7 // 8, height * 7 // 8), radius=min(size) // 10, fill=255
    )
    draw.rectangle((0, height * 2 // 5, width, height * 3 // 5), fill=128)
    return mask


def _jpeg(progressive: bool, exif_orientation: int | None = None):
    def make(size, seed):
        image = scene(size, seed)
        options = {"quality": 90, "progressive": progressive}
        if exif_orientation:
            exif = Image.Exif()
            exif[EXIF_ORIENTATION] = exif_orientation
            exif[EXIF_MAKE], exif[EXIF_MODEL] = "bench", "corpus"
            options["exif"] = exif.tobytes()
        return _save(image, "JPEG", **options)

    return make


def _png(mode: str, grain: int = 14):
    def make(size, seed):
        image = scene(size, seed, grain=grain)
        if mode == "RGBA":
            image.putalpha(alpha_mask(size))
        return _save(image, "PNG")

    return make


def _webp(alpha: bool):
    def make(size, seed):
        image = scene(size, seed)
        if alpha:
            image.putalpha(alpha_mask(size))
        return _save(image, "WEBP", quality=80, method=4)

    return make


def _gif_animated(size, seed):
    frames = []
    for index in range(8):
        frame = scene(size, seed + index, grain=0)
        frames.append(frame.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _graphic(size: tuple[int, int], seed: int) -> Image.Image:
    """A palette picture (shapes on index 0, which is made transparent): quick to make at 50 MP."""
    rng = random.Random(seed)
    image = Image.new("P", size, 0)
    image.putpalette([rng.randrange(256) for _ in range(768)])
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(300):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.ellipse(
            (x, y, x + rng.randrange(width // 4), y + rng.randrange(height // 4)), fill=rng.randrange(1, 256)
        )
    return image


def _palette(fmt: str):
    def make(size, seed):
        return _save(_graphic(size, seed), fmt, transparency=0)

    return make


def _png_16bit_grey(size, seed):
    ramp = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return _save(ramp.convert("I").point(lambda v: v * 257).convert("I;16"), "PNG")


def _tiff_rgba(size, seed):
    rgba = _graphic(size, seed).convert("RGBA")
    return _save(rgba, "TIFF", compression="tiff_deflate")


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


SPECS: tuple[Spec, ...] = (
    *(
        Spec(
            f"jpeg-baseline-{label}.jpg",
            f"JPEG baseline {label.upper().replace('MP', ' MP')}",
            SIZES[label],
            _jpeg(False),
            quick=label in ("0.3mp", "2mp", "12mp"),  # 2 MP is also the LocalStack upload
        )
        for label in ("0.3mp", "2mp", "12mp", "24mp")
    ),
    *(
        Spec(
            f"jpeg-progressive-{label}.jpg",
            f"JPEG progressive {label.upper().replace('MP', ' MP')}",
            SIZES[label],
            _jpeg(True),
            quick=label in ("0.3mp", "12mp"),
        )
        for label in ("0.3mp", "2mp", "12mp", "24mp")
    ),
    Spec(
        "jpeg-exif6-12mp.jpg", "JPEG baseline 12 MP, EXIF rotated", SIZES["12mp"], _jpeg(False, 6), quick=True
    ),
    Spec("png-rgb-12mp.png", "PNG RGB 12 MP", SIZES["12mp"], _png("RGB"), quick=True),
    Spec("png-rgba-12mp.png", "PNG RGBA 12 MP", SIZES["12mp"], _png("RGBA"), quick=True),
    Spec("gif-animated.gif", "GIF animated 800x600, 8 frames", (800, 600), _gif_animated, quick=True),
    Spec("webp-0.3mp.webp", "WebP lossy 0.3 MP", SIZES["0.3mp"], _webp(False), quick=True),
    Spec("webp-12mp.webp", "WebP lossy 12 MP", SIZES["12mp"], _webp(False), quick=True),
    Spec("webp-alpha-12mp.webp", "WebP lossy + alpha 12 MP", SIZES["12mp"], _webp(True)),
    # The largest inputs the limits accept (50 MP; PNG without grain to stay under 50 MiB).
    Spec(
        "limit-jpeg-progressive-50mp.jpg",
        "JPEG progressive 50 MP (limit)",
        SIZES["50mp"],
        _jpeg(True),
        limit=True,
    ),
    Spec(
        "limit-png-rgba-50mp.png", "PNG RGBA 50 MP (limit)", SIZES["50mp"], _png("RGBA", grain=0), limit=True
    ),
    # Formats still decoded at full size by Pillow (palette, 16-bit, TIFF): the memory worst cases.
    Spec(
        "limit-png-palette-alpha-50mp.png",
        "PNG palette + tRNS 50 MP (limit)",
        SIZES["50mp"],
        _palette("PNG"),
        limit=True,
    ),
    Spec(
        "limit-gif-alpha-50mp.gif",
        "GIF + transparency 50 MP (limit)",
        SIZES["50mp"],
        _palette("GIF"),
        limit=True,
    ),
    Spec(
        "limit-png-16bit-grey-50mp.png",
        "PNG 16-bit grey 50 MP (limit)",
        SIZES["50mp"],
        _png_16bit_grey,
        limit=True,
    ),
    Spec("limit-tiff-rgba-50mp.tiff", "TIFF RGBA 50 MP (limit)", SIZES["50mp"], _tiff_rgba, limit=True),
    Spec(
        "limit-webp-alpha-50mp.webp",
        "WebP lossy + alpha 50 MP (limit)",
        SIZES["50mp"],
        _webp(True),
        limit=True,
    ),
)


def ensure(*, quick: bool = False, limits: bool = False) -> list[Item]:
    """Generate what is missing (or stale) and return the items of the selection, in SPECS order."""
    CORPUS_DIR.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest()
    changed = False
    items = []
    for spec in SPECS:
        if (quick and not spec.quick) or (spec.limit and not limits):
            continue
        known = manifest.get(spec.name)
        path = CORPUS_DIR / spec.name
        if not known or not path.is_file() or path.stat().st_size != known["bytes"]:
            LOG.info("generating %s", spec.name)
            data = spec.make(spec.size, spec.seed)
            if len(data) > MAX_SOURCE_BYTES:
                raise RuntimeError(f"{spec.name} is {len(data)} bytes, over MAX_SOURCE_BYTES")
            path.write_bytes(data)
            known = asdict(
                Item(spec.name, spec.kind, *spec.size, bytes=len(data), quick=spec.quick, limit=spec.limit)
            )
            manifest[spec.name] = known
            changed = True
        items.append(Item(**known))
    if changed:
        MANIFEST.write_text(json.dumps({"version": CORPUS_VERSION, "files": manifest}, indent=1))
    return items


def _read_manifest() -> dict:
    try:
        content = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return content["files"] if content.get("version") == CORPUS_VERSION else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the --quick subset")
    parser.add_argument("--limits", action="store_true", help="also the 50 MP limit files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    for item in ensure(quick=args.quick, limits=args.limits):
        LOG.info(json.dumps(asdict(item)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
