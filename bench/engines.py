"""The three ways of making a thumbnail that the benchmark compares, each bytes in, bytes out.

- `guide`: the image logic of the tutorial's handler (Image.open, thumbnail((128, 128)), save in
  the source's format), without its S3 calls: the baseline every ratio refers to.
- `ours`: `thumbnailer.core.make_thumbnail` with the deployed defaults.
- `ours-before`: the same core as it was at a git revision (bench/run.py --before REF), for
  before/after numbers from one run.
- `vips`: libvips through pyvips (`thumbnail_buffer`: shrink-on-load, auto-rotation), a
  reference point only; it is an optional extra of the benchmark, never of the function.
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

Engine = Callable[[bytes], bytes]
BOX = 128
JPEG_QUALITY = 85
NAMES = ("guide", "ours", "ours-before", "vips")


def guide(data: bytes) -> bytes:
    """The tutorial's handler, minus S3: open, thumbnail((128, 128)), save in image.format."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.thumbnail((BOX, BOX))
    buffer = io.BytesIO()
    image.save(buffer, format=image.format)
    buffer.seek(0)
    return buffer.getvalue()


def ours(data: bytes) -> bytes:
    """The deployed core with the defaults serverless.yml sets."""
    from thumbnailer.core import make_thumbnail

    return make_thumbnail(data, max_size=(BOX, BOX), max_pixels=50_000_000, jpeg_quality=JPEG_QUALITY).data


# Output format per loader, as ours chooses it (BMP and TIFF become PNG).
_VIPS_SAVERS = {
    "jpegload_buffer": ".jpg[Q=85,optimize_coding,strip]",
    "gifload_buffer": ".gif[strip]",
    "webpload_buffer": ".webp[Q=85,strip]",
}


def vips(data: bytes) -> bytes:
    """libvips: thumbnail_buffer (shrink-on-load, EXIF rotation), saved in the source's format."""
    import pyvips

    image = pyvips.Image.thumbnail_buffer(data, BOX, height=BOX, size="down")
    return image.write_to_buffer(_VIPS_SAVERS.get(image.get("vips-loader"), ".png[strip]"))


def vips_unavailable() -> str | None:
    """Why the vips column cannot run here, or None when it can (also configures libvips)."""
    try:
        import pyvips
    except Exception as exc:  # ImportError, or OSError/cffi errors when libvips is missing
        return f"pyvips not importable: {type(exc).__name__}: {exc}".splitlines()[0]
    # Same terms as Pillow: one thread (Lambda below 1769 MB has less than one vCPU) and no
    # operation cache, which would otherwise answer repeated runs on the same bytes from memory.
    # libvips logs every operation at INFO through the "pyvips" logger: noise, and time in the column.
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    pyvips.concurrency_set(int(os.environ.get("BENCH_VIPS_CONCURRENCY", "1")))
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    return None


def get(name: str, core_path: Path | None = None) -> Engine:
    """The engine called `name` (one of NAMES); `ours-before` needs the folder of the old package."""
    if name == "ours-before":
        if core_path is None:
            raise ValueError("ours-before needs the folder holding the earlier thumbnailer/ package")
        make_thumbnail = _load_core(str(core_path)).make_thumbnail

        def ours_before(data: bytes) -> bytes:
            return make_thumbnail(
                data, max_size=(BOX, BOX), max_pixels=50_000_000, jpeg_quality=JPEG_QUALITY
            ).data

        return ours_before
    return {"guide": guide, "ours": ours, "vips": vips}[name]


@functools.cache
def _load_core(folder: str):
    """thumbnailer.core from the package under `folder`, imported beside the current package.

    The earlier package's modules import each other as `thumbnailer.*`: they are imported with
    the current package set aside, then the current one is put back. Their functions keep their
    own modules' globals, so both stay usable.
    """

    def package_modules() -> dict:
        return {n: m for n, m in sys.modules.items() if n == "thumbnailer" or n.startswith("thumbnailer.")}

    current = package_modules()
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("thumbnailer.core")
    finally:
        sys.path.remove(folder)
        for name in package_modules():
            del sys.modules[name]
        sys.modules.update(current)


def warm_imports(name: str, core_path: Path | None = None) -> None:
    """Import what `name` imports lazily, so that a memory probe measures pixels, not modules."""
    from PIL import Image

    Image.preinit()
    Image.init()  # the guide's Image.open imports every plugin on its first WebP anyway
    if name == "ours":
        _load_libwebp()
    elif name == "ours-before" and core_path is not None:
        _load_core(str(core_path))
    elif name == "vips":
        import pyvips  # noqa: F401


def _load_libwebp() -> None:
    """Load the libwebp the core's WebP path calls (thumbnailer.decoders.webp; earlier, fastpaths)."""
    for module_name in ("thumbnailer.decoders.webp", "thumbnailer.fastpaths"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module._libwebp()
        return


def versions() -> dict[str, str]:
    """Versions of the libraries the engines use."""
    import PIL
    from PIL import features

    found = {
        "Pillow": PIL.__version__,
        "libjpeg-turbo": features.version("jpg") or "?",
        "libwebp": features.version("webp") or "?",
        "zlib": features.version("zlib") or "?",
    }
    if vips_unavailable() is None:
        import pyvips

        found["pyvips"] = pyvips.__version__
        found["libvips"] = ".".join(str(pyvips.version(i)) for i in range(3))
    return found
