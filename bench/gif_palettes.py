"""How well each way of re-palettising a GIF thumbnail keeps the filtered image, and what it costs.

    make gif-palettes        # python bench/gif_palettes.py in the unit test environment (numpy for SSIM)

A GIF thumbnail filtered in true colour needs a palette of at most 256 colours again. For GIF
sources made the usual ways from the JPEG fixtures (median cut, octree, web-safe palette with
dithering) and for the GIF fixtures, this compares with the unquantised Lanczos thumbnail:

- guide: the tutorial's nearest-neighbour `thumbnail()` on the palette image (no re-quantising);
- octree: Pillow's FASTOCTREE on the Lanczos thumbnail (what thumbnailer.core does);
- median cut: Pillow's MEDIANCUT on it (what thumbnailer.core did before; slowest, best).

Luma SSIM and the worst channel's mean absolute difference use the golden tests' measures
(harness/golden.py). Times are medians of 15 runs of the quantising step alone.
"""

from __future__ import annotations

import functools
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.fixtures import IMAGES_DIR  # noqa: E402
from harness.golden import compare_images  # noqa: E402
from thumbnailer.core import make_thumbnail  # noqa: E402

PHOTOS = ("jpeg-baseline.jpg", "jpeg-cmyk.jpg", "jpeg-exif-orientation-6.jpg", "jpeg-progressive.jpg")
MAKERS = {
    "median cut 256": lambda image: image.quantize(256),
    "octree 128": lambda image: image.quantize(128, method=Image.Quantize.FASTOCTREE),
    "web-safe, dithered": lambda image: image.convert("P", palette=Image.Palette.WEB),
}
QUANTIZERS = {
    "octree": lambda image: image.quantize(256, method=Image.Quantize.FASTOCTREE),
    "median cut": lambda image: image.quantize(256, method=Image.Quantize.MEDIANCUT),
}


def encoded(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format)
    return buffer.getvalue()


def gif_sources() -> dict[str, bytes]:
    """{label: GIF bytes}: each photo fixture palettised by each maker, then the GIF fixtures."""
    sources = {}
    for photo in PHOTOS:
        rgb = Image.open(IMAGES_DIR / photo).convert("RGB")
        for label, make in MAKERS.items():
            sources[f"{photo}, {label}"] = encoded(make(rgb), "GIF")
    for fixture in sorted(IMAGES_DIR.glob("*.gif")):
        sources[fixture.name] = fixture.read_bytes()
    return sources


def median_ms(function, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def lanczos_thumbnail(data: bytes) -> Image.Image:
    """The true-colour thumbnail before any palette: our core's resize, from a PNG-output twin."""
    source = Image.open(io.BytesIO(data))
    source.seek(0)
    as_png = encoded(source.convert("RGBA" if "transparency" in source.info else "RGB"), "PNG")
    return Image.open(io.BytesIO(make_thumbnail(as_png).data))


def main() -> None:
    columns = ["source", "guide SSIM / MAD", *(f"{name} SSIM / MAD / ms" for name in QUANTIZERS)]
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(QUANTIZERS))
    for label, data in gif_sources().items():
        reference = lanczos_thumbnail(data)
        guide = Image.open(io.BytesIO(data))
        guide.thumbnail((128, 128))
        cells = [_measures(reference, guide.convert("RGBA"))]
        rgb = reference.convert("RGB")
        for quantize in QUANTIZERS.values():
            quantized = quantize(rgb).convert("RGBA")
            if reference.mode == "RGBA":
                quantized.putalpha(reference.getchannel("A"))
            milliseconds = median_ms(functools.partial(quantize, rgb))
            cells.append(f"{_measures(reference, quantized)} / {milliseconds:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def _measures(reference: Image.Image, candidate: Image.Image) -> str:
    """Luma SSIM and the worst channel's MAD of an RGBA candidate against the reference."""
    candidate = candidate.convert(reference.mode)
    comparison = compare_images("gif", encoded(reference, "PNG"), encoded(candidate, "PNG"))
    worst = max(value for channel, value in comparison.mad.items() if channel != "alpha")
    return f"{comparison.ssim_luma:.3f} / {worst:.1f}"


if __name__ == "__main__":
    main()
