"""Fast paths: per format, a cheaper way to the pixels that Pillow's generic path gives.

Each module exposes `FORMATS` (the Pillow format names it serves) and
`reduce(image, data, box) -> Image | None`: the opened (not yet loaded) `image` of `data`,
reduced as `Image.thumbnail(box, LANCZOS)` reduces it, in the source's mode; None when the path
does not apply. The result must equal the generic path's (JPEG and PNG: the same bytes; WebP:
libwebp's scaled decode, within the golden tolerance). The core tries them in order and treats
any exception from one as a bug in the optimisation, never as a verdict on the image: it logs
it and runs the generic path. Measured by `make bench` (README, Performance).
"""

from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from thumbnailer.decoders import jpeg, png, webp


class Reduce(Protocol):
    def __call__(self, image: Image.Image, data: bytes, box: tuple[int, int]) -> Image.Image | None: ...


@dataclass(frozen=True)
class FastPath:
    """One format's fast path, named in log lines when it fails."""

    name: str
    formats: frozenset[str]
    reduce: Reduce


FAST_PATHS = (
    FastPath("jpeg-dc-scans", jpeg.FORMATS, jpeg.reduce),
    FastPath("png-strips", png.FORMATS, png.reduce),
    FastPath("webp-scaled-decode", webp.FORMATS, webp.reduce),
)
