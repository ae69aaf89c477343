"""Reduction geometry shared by the core and the fast paths: Image.thumbnail()'s, in strips.

Image.thumbnail(box) first shrinks by a whole factor (a box average, Image.reduce) to at least
twice the final size, then resamples with Lanczos. StripReducer does exactly that for an image
that arrives, or is converted, a strip of rows at a time, so only one strip is ever held at full
resolution: same pixels, a fraction of the memory.
"""

import math

from PIL import Image

# Image.thumbnail's default: shrink by a whole factor (box average) down to at least twice the
# final size, then resample.
REDUCING_GAP = 2.0
# Rows decoded and reduced at a time: small enough to stay in cache.
_STRIP_BYTES = 1 << 20
# (strip mode, working mode) pairs reduced without converting the full-size strip first: RGBX
# is RGB with the padding byte Pillow keeps anyway, and reduce() averages each band alone.
_REDUCED_AS_IS = frozenset({("RGBX", "RGB")})


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
            int(width / final_size[0] / REDUCING_GAP) or 1,
            int(height / final_size[1] / REDUCING_GAP) or 1,
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
        if strip.mode != self._work_mode and (strip.mode, self._work_mode) not in _REDUCED_AS_IS:
            strip = strip.convert(self._work_mode)
        reduced = strip.reduce(self.factor, box=(0, first_row, strip.width, strip.height))
        self._reduced.paste(reduced, (0, self._next_row))  # converts an RGBX band to RGB
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
