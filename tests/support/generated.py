"""Deterministic sources generated at run time, for paths the small committed fixtures cannot reach."""

import io

from PIL import Image, ImageDraw


def photo_like(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture with gradients, edges and fine detail, in mode RGB or RGBA (an opaque ellipse)."""
    width, height = size
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").rotate(90).resize(size)
    blue = Image.radial_gradient("L").resize(size)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for step in range(0, width, 37):
        draw.line((step, 0, width - step, height), fill=(255, 255, 255), width=3)
    draw.rectangle((width // 8, height // 8, width // 3, height // 3), fill=(200, 30, 30))
    if mode == "RGBA":
        alpha = Image.new("L", size, 0)
        ellipse = (width // 10, height // 10, width * 9 // 10, height * 9 // 10)
        ImageDraw.Draw(alpha).ellipse(ellipse, fill=255)
        image.putalpha(alpha)
    return image


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    """`image` saved in `image_format` with Pillow's `options`."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


# Sources big enough for each fast path of thumbnailer/decoders/ with the default 128x128 box:
# PNG and WebP reduce in the decoder from 4x the box, progressive JPEG drops scans from 16x.
FAST_PATH_SOURCES = {
    "png-rgb-1200x800.png": lambda: encoded(photo_like((1200, 800)), "PNG"),
    "png-rgba-800x1200.png": lambda: encoded(photo_like((800, 1200), "RGBA"), "PNG"),
    "jpeg-progressive-3200x2100.jpg": lambda: encoded(
        photo_like((3200, 2100)), "JPEG", progressive=True, quality=90
    ),
    "webp-lossy-1200x900.webp": lambda: encoded(photo_like((1200, 900)), "WEBP", quality=90),
    "webp-lossless-alpha-1200x900.webp": lambda: encoded(
        photo_like((1200, 900), "RGBA"), "WEBP", lossless=True
    ),
}
