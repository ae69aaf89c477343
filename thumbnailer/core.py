"""The pure core: image bytes in, thumbnail value out.

No I/O and no configuration lookups happen here, so the function is deterministic: identical
input bytes and arguments always give byte-identical output, which makes re-delivered S3
events harmless. (The one file-system access: the first WebP loads the libwebp that Pillow
bundles, to decode at reduced size; see _libwebp.)
"""

import io
import warnings
from dataclasses import dataclass

from PIL import (
    BmpImagePlugin,  # noqa: F401 - registers the format (see ACCEPTED_FORMATS)
    ExifTags,
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from thumbnailer.errors import (
    CorruptImage,
    EmptySource,
    ImageTooLarge,
    NotAnImage,
    PermanentError,
    UnsupportedImageFormat,
)
from thumbnailer.fastpaths import (
    PngLayout,
    StripReducer,
    png_thumbnail,
    reduce_in_bands,
    thumbnail_size,
    webp_thumbnail,
    without_unused_scans,
)

# Decoders the service accepts. Restricting Image.open to these keeps exotic, rarely audited
# decoders (EPS, PSD, ...) away from untrusted uploads. The JPEG decoder also opens MPO, what
# phones write for JPEGs with an embedded preview; it is a JPEG for every purpose here.
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Their plugins are imported above, TIFF's (the largest) only when a TIFF arrives (_open): Image.open
# tries ACCEPTED_FORMATS in order and imports every one of Pillow's ~45 plugins (its `init()`) when
# it meets one not loaded yet, on the first invocation's clock (~150 ms, measured when the layer
# shipped no bytecode).

# Output format per source format: web formats keep their format; BMP and TIFF, which browsers
# do not display, become PNG (lossless, keeps transparency). The S3 key keeps the source's name.
OUTPUT_FORMATS = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "GIF": "GIF",
    "WEBP": "WEBP",
    "BMP": "PNG",
    "TIFF": "PNG",
}

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

# What Pillow's TIFF plugin accepts (classic and BigTIFF, both byte orders).
_TIFF_PREFIXES = (b"MM\x00\x2a", b"II\x2a\x00", b"MM\x2a\x00", b"II\x00\x2a", b"MM\x00\x2b", b"II\x2b\x00")

# Orientation values 5-8 rotate by 90 degrees, so the stored pixels are the box turned sideways.
_SIDEWAYS_ORIENTATIONS = frozenset({5, 6, 7, 8})

# Palette index used for transparent pixels when a GIF thumbnail is re-quantised.
_GIF_TRANSPARENT_INDEX = 255
# A filtered GIF thumbnail needs a palette again. Pillow's fast octree costs 0.3 ms per thumbnail;
# median cut, its best quantiser, costs 7-20 ms: 2-5 times all of the guide's work. Against the
# unquantised thumbnail, octree gives luma SSIM 0.90-1.00, median cut 0.94-1.00 and the guide's
# nearest-neighbour resizing 0.45-0.91 (`python bench/gif_palettes.py`).
_GIF_QUANTIZER = Image.Quantize.FASTOCTREE

# What ImageOps.exif_transpose does per orientation; the metadata it also rewrites is never saved.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Thumbnail:
    """An encoded thumbnail and what a caller needs to store and describe it."""

    data: bytes
    format: str
    content_type: str
    width: int
    height: int
    source_format: str
    source_width: int
    source_height: int


def make_thumbnail(
    data: bytes,
    *,
    max_size: tuple[int, int] = (128, 128),
    max_pixels: int = 50_000_000,
    jpeg_quality: int = 85,
) -> Thumbnail:
    """Return a thumbnail of `data` that fits in `max_size`, keeping the aspect ratio.

    The image is never enlarged and each side is at least 1 px. EXIF orientation is applied,
    animated images give a still of their first frame, and transparency is kept where the
    output format holds it. Raises a `PermanentError` subclass for input that can never work.
    """
    if not data:
        raise EmptySource("the object is empty (0 bytes)")
    image = _open(data, max_pixels)
    source_format = image.format
    source_width, source_height = image.size
    output_format = OUTPUT_FORMATS[source_format]

    # Pillow decodes lazily: an image already inside the box is first decoded by transpose() or
    # save(), so every step up to the encoded bytes maps decoder errors to CorruptImage. Damaged
    # data also makes Pillow's plugins raise TypeError, IndexError and the like (fuzzing found
    # them): this function is deterministic, so whatever these bytes raise they would raise on
    # every retry. Only MemoryError stays transient: a fresh execution environment may have room.
    try:
        png = PngLayout.parse(data) if source_format == "PNG" else None
        orientation = _orientation(image, png)
        box = max_size[::-1] if orientation in _SIDEWAYS_ORIENTATIONS else max_size
        image = _shrink(image, box, data, png)
        if orientation in _ORIENTATION_TRANSPOSE:
            image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
        encoded = _encode(image, output_format, jpeg_quality)
    except MemoryError:
        raise
    except Exception as exc:
        raise CorruptImage(f"{source_format} data could not be decoded: {type(exc).__name__}: {exc}") from exc
    return Thumbnail(
        data=encoded,
        format=output_format,
        content_type=CONTENT_TYPES[output_format],
        width=image.width,
        height=image.height,
        source_format=source_format,
        source_width=source_width,
        source_height=source_height,
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Parse the header only and enforce the format and pixel limits before any decoding."""
    if data.startswith(_TIFF_PREFIXES):
        from PIL import TiffImagePlugin  # noqa: F401 - registers TIFF (see ACCEPTED_FORMATS)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's warning; its hard error stays.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise _unrecognised(data) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"the image header is damaged: {exc}") from exc

    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{image.format} declares {width}x{height} = {width * height} pixels, "
            f"more than the limit of {max_pixels}"
        )
    if width < 1 or height < 1:
        raise CorruptImage(f"{image.format} declares an empty size {width}x{height}")
    return image


def _unrecognised(data: bytes) -> PermanentError:
    """Tell a damaged accepted image, an image in a refused format and a non-image apart."""
    claimed = _format_from_signature(data)
    if claimed:
        return CorruptImage(f"starts like a {claimed} file but its header cannot be parsed")
    try:
        with Image.open(io.BytesIO(data)) as other:
            return UnsupportedImageFormat(
                f"{other.format} images are not accepted; accepted formats: {', '.join(ACCEPTED_FORMATS)}"
            )
    except Exception:  # any decoder failure just means: not an image we know
        return NotAnImage(f"the object is not a recognisable image (starts with {data[:8]!r})")


def _format_from_signature(data: bytes) -> str | None:
    """The accepted format whose magic bytes `data` starts with, if any."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _orientation(image: Image.Image, png: "PngLayout | None") -> int:
    """The EXIF (or XMP) orientation, 1 when there is none, read without decoding pixels.

    PNG's getexif() decodes the whole image, in case an eXIf chunk follows the pixel data; when
    the chunk walk found no metadata there, the header's chunks are all there is to read.
    """
    if png is not None and not png.metadata_after_pixels:
        exif = Image.Image.getexif(image)
    else:
        exif = image.getexif()
    return exif.get(ExifTags.Base.Orientation, 1)


def _shrink(
    image: Image.Image, box: tuple[int, int], data: bytes, png: "PngLayout | None" = None
) -> Image.Image:
    """Resize into `box` with a Lanczos filter, in a mode that filters properly.

    JPEGs are shrunk before any mode conversion so that `thumbnail()` can ask libjpeg for a
    reduced-scale decode (draft mode), which is much faster than decoding every pixel. PNG and
    WebP take the streaming or reduced-size decoders below when they apply.
    """
    if image.format in ("JPEG", "MPO"):
        image = without_unused_scans(image, data, box)
        image.thumbnail(box, Image.Resampling.LANCZOS)
        return _to_output_mode(image)
    if png is not None and (thumbnail := png_thumbnail(image, png, box)) is not None:
        return thumbnail
    if image.format == "WEBP" and (thumbnail := webp_thumbnail(image, data, box)) is not None:
        return thumbnail
    return _shrink_decoded(image, box)


def _shrink_decoded(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """Pillow decodes the whole image; mode conversion and reduction then go band by band.

    Converted as a whole, a palette or 16-bit image would get a full-size true-colour copy, and
    alpha another one, premultiplied, inside resize(): the same pixels in bands avoid both.
    """
    final_size = thumbnail_size(image.size, box)
    if final_size is not None:
        sample = _to_output_mode(image.crop((0, 0, 1, 1)))
        reducer = StripReducer(sample.mode, image.size, final_size)
        if reducer.reduces:
            thumbnail = reduce_in_bands(image, reducer, _to_output_mode)
            thumbnail.info = sample.info
            return thumbnail
    image = _to_output_mode(image)
    image.thumbnail(box, Image.Resampling.LANCZOS)
    return image


def _to_output_mode(image: Image.Image) -> Image.Image:
    """Convert modes that cannot be filtered or saved (palette, 16-bit, CMYK, 1-bit)."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if mode == "P" or mode == "PA":
        # Resizing palette indices would need nearest neighbour; go to true colour first.
        has_alpha = "transparency" in image.info or mode == "PA"
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith("I;16") or mode == "I":
        # Scale 16-bit samples down to 8 bits instead of clipping everything above 255.
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if mode == "1":
        return image.convert("L")
    if mode == "RGBa":
        return image.convert("RGBA")
    return image.convert("RGB")


def _encode(image: Image.Image, output_format: str, jpeg_quality: int) -> bytes:
    """Encode without copying metadata (EXIF orientation is already applied to the pixels)."""
    buffer = io.BytesIO()
    icc_profile = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA", "L") else None
    if output_format == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = _flatten(image)
        image.save(buffer, "JPEG", quality=jpeg_quality, optimize=True, icc_profile=icc_profile)
    elif output_format == "PNG":
        image.save(buffer, "PNG", icc_profile=icc_profile)
    elif output_format == "WEBP":
        image.save(buffer, "WEBP", quality=jpeg_quality, icc_profile=icc_profile)
    elif output_format == "GIF":
        _gif_palette(image).save(buffer, "GIF")
    else:  # pragma: no cover - OUTPUT_FORMATS only names the formats handled above
        raise AssertionError(f"no encoder for {output_format}")
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """Composite transparent pixels onto white for formats without alpha."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _gif_palette(image: Image.Image) -> Image.Image:
    """Quantise a filtered true-colour thumbnail back to a GIF palette, keeping transparency."""
    if image.mode not in ("RGBA", "LA"):
        return image.convert("RGB").quantize(colors=256, method=_GIF_QUANTIZER)
    rgba = image.convert("RGBA")
    transparent = rgba.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0, "1")
    paletted = rgba.convert("RGB").quantize(colors=_GIF_TRANSPARENT_INDEX, method=_GIF_QUANTIZER)
    paletted.paste(_GIF_TRANSPARENT_INDEX, mask=transparent)
    paletted.info["transparency"] = _GIF_TRANSPARENT_INDEX
    return paletted
