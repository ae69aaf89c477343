"""Pixel modes and colour: what a thumbnail is filtered in, and sRGB without a profile at the end.

Sources with an ICC profile (Display P3 from phones, Adobe RGB from cameras, CMYK from print
work) are converted to sRGB by LittleCMS (Pillow's ImageCms) after the reduction, on the small
image, as libvips' thumbnail does; untagged sources count as sRGB. The thumbnail then carries
no profile: every viewer shows untagged images as sRGB, and a profile often weighs more than
the thumbnail. A profile that LittleCMS cannot read, or one for another colour space than the
pixels', is ignored, as browsers ignore it.
"""

import functools
import io

from PIL import Image, ImageMath

# Modes the reduction works in: 8 bits per sample, filterable, and still in the source's colour
# space (CMYK and LAB are converted by colour management afterwards).
WORKING_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "LAB"})
_WITH_ALPHA = {"L": "LA", "RGB": "RGBA", "1": "LA"}
# ICC colour space signatures, and the working modes whose pixels they describe.
_PROFILE_MODES = {"RGB ": ("RGB", "RGBA"), "GRAY": ("L", "LA"), "CMYK": ("CMYK",), "Lab ": ("LAB",)}


def to_working_mode(image: Image.Image) -> Image.Image:
    """`image` (or a band of it) in a WORKING_MODES mode, colour-keyed transparency as alpha.

    Palette images become true colour (resizing indices would need nearest neighbour), 16- and
    32-bit integers are scaled to 8 bits (not clipped), 1-bit becomes greyscale, and a tRNS
    colour key (PNG's transparency for RGB, greyscale, 1-bit and 16-bit images) becomes an alpha
    channel before any filter can blend the key colour into its neighbours.
    """
    mode = image.mode
    key = image.info.get("transparency")
    if mode in WORKING_MODES and (key is None or mode not in _WITH_ALPHA):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if key is not None or mode == "PA" else "RGB")
    if mode in ("RGB", "L", "1"):
        return image.convert(_WITH_ALPHA[mode] if key is not None else "L")
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, I
        grey = _scaled_to_8_bits(image)
        if isinstance(key, int):
            opaque = ImageMath.lambda_eval(lambda args: (args["a"] != key) * 255, a=image.convert("I"))
            grey.putalpha(opaque.convert("L"))
        return grey
    if mode == "RGBa":
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    return image.convert("RGB")


def _scaled_to_8_bits(image: Image.Image) -> Image.Image:
    return image.convert("I").point(lambda value: value / 257).convert("L")


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """The working-mode `image` in sRGB, as L, LA, RGB or RGBA, described by `icc_profile`."""
    mode = image.mode
    if icc_profile:
        transform = _transform(bytes(icc_profile), mode)
        if transform is not None:
            return transform(image)
    if mode == "LAB":
        return _transform_lab(image)
    if mode == "CMYK":
        return image.convert("RGB")
    return image


def _transform_lab(image: Image.Image) -> Image.Image:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), _srgb(), "LAB", "RGB")
    return ImageCms.applyTransform(image, transform)


@functools.cache
def _srgb():
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


@functools.lru_cache(maxsize=16)
def _transform(icc_profile: bytes, mode: str):
    """A callable converting `mode` pixels described by the profile to sRGB; None to ignore it.

    Greyscale goes through RGB and back: a grey profile's tones land on sRGB's neutral axis,
    where Pillow's RGB-to-L conversion is exact. Cached per profile and mode: building a
    transform costs milliseconds, applying it to a thumbnail a fraction of one.
    """
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if mode not in _PROFILE_MODES.get(profile.profile.xcolor_space, ()):
            return None
        in_mode = {"LA": "L", "LAB": "LAB"}.get(mode, mode)
        out_mode = {"L": "RGB", "LA": "RGB", "CMYK": "RGB", "LAB": "RGB"}.get(mode, mode)
        transform = ImageCms.buildTransform(profile, _srgb(), in_mode, out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None

    def apply(image: Image.Image) -> Image.Image:
        if mode == "L":
            return ImageCms.applyTransform(image, transform).convert("L")
        if mode == "LA":
            grey, alpha = image.split()
            return Image.merge("LA", (ImageCms.applyTransform(grey, transform).convert("L"), alpha))
        return ImageCms.applyTransform(image, transform)

    return apply
