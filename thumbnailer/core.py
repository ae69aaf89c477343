"""The pure core: image bytes in, thumbnail value out.

No I/O and no configuration lookups happen here, so the function is deterministic: identical
input bytes and arguments always give byte-identical output, which makes re-delivered S3
events harmless. (File-system access: the first WebP loads the libwebp that Pillow bundles, to
decode at reduced size, and the first TIFF, AVIF or HEIF imports its decoder.)

The steps: recognise the format by its signature and parse the header only, enforcing the
limits (pixels, side, JPEG scans); reduce, through a format's fast path when one applies and
Pillow's generic path otherwise; convert to sRGB; apply the EXIF orientation; encode without
metadata.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

from thumbnailer import formats
from thumbnailer.colour import to_srgb, to_working_mode
from thumbnailer.decoders import FAST_PATHS, jpeg, png
from thumbnailer.decoders.strips import StripReducer, reduce_in_bands, thumbnail_size
from thumbnailer.errors import (
    CorruptImage,
    EmptySource,
    ImageTooComplex,
    ImageTooLarge,
    NotAnImage,
    UnsupportedImageFormat,
)

CONTENT_TYPES = formats.CONTENT_TYPES
ACCEPTED_FORMATS = formats.ACCEPTED_FORMATS

# Longest side accepted, in pixels: JPEG's and GIF's own format limit (WebP's is 16,383). Longer
# rows exist only in crafted PNG, TIFF or BMP files, and a row is the smallest unit their
# decoders produce: a 50,000,000 x 1 PNG needs hundreds of MiB for one row.
MAX_SIDE = 65_535
# Scans a JPEG may have. libjpeg decodes every scan over all the blocks it covers, so a 1 MiB
# file of empty scans can keep it busy for minutes. Encoders write 1 (baseline) to about 20
# (progressive, mozjpeg); 256 is the limit nvImageCodec applies after the cure53 audit of
# libjpeg-turbo. 256 scans of a 50-megapixel image decode in about 2.5 s here.
MAX_JPEG_SCANS = 256

# Orientation values 5-8 rotate by 90 degrees, so the stored pixels are the box turned sideways.
_SIDEWAYS_ORIENTATIONS = frozenset({5, 6, 7, 8})
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
# Palette index used for transparent pixels when a GIF thumbnail is re-quantised.
_GIF_TRANSPARENT_INDEX = 255
# A filtered GIF thumbnail needs a palette again. Pillow's fast octree costs 0.3 ms per thumbnail;
# median cut, its best quantiser, costs 7-20 ms: 2-5 times all of the guide's work. Against the
# unquantised thumbnail, octree gives luma SSIM 0.90-1.00, median cut 0.94-1.00 and the guide's
# nearest-neighbour resizing 0.45-0.91 (`make gif-palettes`).
_GIF_QUANTIZER = Image.Quantize.FASTOCTREE
# Where the decoders' Python code lives: an exception raised there is their verdict on the bytes.
_DECODER_PACKAGES = (Image.__file__.rpartition("/")[0] + "/", "/pillow_heif/")


@dataclass(frozen=True)
class FastPathFailure:
    """A fast path that raised; the thumbnail then came from the generic path."""

    name: str
    error: str


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
    fast_path_failures: tuple[FastPathFailure, ...] = ()


def make_thumbnail(
    data: bytes,
    *,
    max_size: tuple[int, int] = (128, 128),
    max_pixels: int = 50_000_000,
    jpeg_quality: int = 85,
) -> Thumbnail:
    """Return a thumbnail of `data` that fits in `max_size`, keeping the aspect ratio.

    The image is never enlarged and each side is at least 1 px. EXIF orientation is applied,
    colours are converted to sRGB, animated images give a still of their first frame, and
    transparency is kept where the output format holds it; no metadata is copied. Raises a
    `PermanentError` subclass for input that can never work. Any other exception is a bug (or,
    MemoryError, a lack of resources) and is raised as it is.
    """
    if not data:
        raise EmptySource("the object is empty (0 bytes)")
    image = _open(data, max_pixels)
    source_format = image.format
    source_width, source_height = image.size
    icc_profile = image.info.get("icc_profile")
    failures: list[FastPathFailure] = []
    # Pillow decodes lazily, so every step up to the encoded bytes can meet damaged data.
    try:
        orientation = _orientation(image, data)
        box = max_size[::-1] if orientation in _SIDEWAYS_ORIENTATIONS else max_size
        thumbnail = to_srgb(_reduce(image, data, box, max_pixels, failures), icc_profile)
        if orientation in _ORIENTATION_TRANSPOSE:
            thumbnail = thumbnail.transpose(_ORIENTATION_TRANSPOSE[orientation])
        output_format = formats.output_format(source_format, thumbnail.mode)
        encoded = _encode(thumbnail, output_format, jpeg_quality)
    except Exception as exc:
        if not _raised_by_decoder(exc):
            raise
        tried = "".join(f" (after the {f.name} fast path failed: {f.error})" for f in failures)
        raise CorruptImage(
            f"{source_format} data could not be decoded: {type(exc).__name__}: {exc}{tried}"
        ) from exc
    return Thumbnail(
        data=encoded,
        format=output_format,
        content_type=CONTENT_TYPES[output_format],
        width=thumbnail.width,
        height=thumbnail.height,
        source_format=source_format,
        source_width=source_width,
        source_height=source_height,
        fast_path_failures=tuple(failures),
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Recognise the format, parse the header only and enforce the limits before any decoding."""
    claimed = formats.accepted_format(data)
    if claimed is None:
        refused = formats.refused_format(data)
        if refused:
            accepted = ", ".join(ACCEPTED_FORMATS)
            raise UnsupportedImageFormat(f"{refused} images are not accepted; accepted formats: {accepted}")
        raise NotAnImage(f"the object is not a recognisable image (starts with {data[:8]!r})")
    formats.register_decoder(claimed)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's warning; its hard error stays.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=(claimed,))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise CorruptImage(f"starts like a {claimed} file but its header cannot be parsed") from exc
    except Exception as exc:
        if not _raised_by_decoder(exc):
            raise
        raise CorruptImage(f"the {claimed} header is damaged: {type(exc).__name__}: {exc}") from exc

    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptImage(f"{image.format} declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{image.format} declares {width}x{height} = {width * height} pixels, "
            f"more than the limit of {max_pixels}"
        )
    if max(width, height) > MAX_SIDE:
        raise ImageTooLarge(f"{image.format} declares {width}x{height}: a side longer than {MAX_SIDE} pixels")
    if claimed == "JPEG" and (scans := jpeg.count_scans(data)) > MAX_JPEG_SCANS:
        raise ImageTooComplex(f"the JPEG has {scans} scans, more than the limit of {MAX_JPEG_SCANS}")
    return image


def _raised_by_decoder(exc: BaseException) -> bool:
    """True if the innermost frame of `exc` is in a decoder's code (Pillow, pillow-heif), not ours.

    Damaged data makes decoders raise OSError, SyntaxError, but also TypeError, IndexError and the
    like (fuzzing found them): whatever these bytes raise, they raise on every retry. The same
    exception from our own code is a bug: it must surface (and be retried), not reject the upload.
    MemoryError is never a verdict: a fresh execution environment may have room.
    """
    if isinstance(exc, MemoryError) or exc.__traceback__ is None:
        return False
    frame = exc.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    filename = frame.tb_frame.f_code.co_filename
    return any(package in filename for package in _DECODER_PACKAGES)


def _orientation(image: Image.Image, data: bytes) -> int:
    """The EXIF (or XMP) orientation still to apply, 1 when there is none; nothing is decoded.

    PNG's getexif() decodes the whole image, in case an eXIf chunk follows the pixel data; when
    no metadata follows them, the header's chunks are all there is to read.
    """
    if image.format in formats.ORIENTED_BY_DECODER:
        return 1
    if image.format == "PNG" and not _png_metadata_after_pixels(data):
        exif = Image.Image.getexif(image)
    else:
        exif = image.getexif()
    value = exif.get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) else 1


def _png_metadata_after_pixels(data: bytes) -> bool:
    """True if an eXIf or text chunk follows the image data (Pillow reads those only on load)."""
    layout = png.PngLayout.parse(data)
    return layout is not None and layout.metadata_after_pixels


def _reduce(
    image: Image.Image, data: bytes, box: tuple[int, int], max_pixels: int, failures: list[FastPathFailure]
) -> Image.Image:
    """The image reduced into `box`, in a working mode: by a fast path if one applies.

    A fast path that raises has a bug, whatever the input: it is recorded in `failures` and the
    generic path decides, on a freshly opened image (the failed path may have used this one).
    """
    for path in FAST_PATHS:
        if image.format not in path.formats:
            continue
        try:
            reduced = path.reduce(image, data, box)
        except MemoryError:
            raise
        except Exception as exc:
            failures.append(FastPathFailure(path.name, f"{type(exc).__name__}: {exc}"))
            return _reduce_generic(_open(data, max_pixels), box)
        if reduced is not None:
            return to_working_mode(reduced)
    return _reduce_generic(image, box)


def _reduce_generic(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """Pillow decodes the whole image; mode conversion and reduction then go band by band.

    JPEGs are shrunk before any mode conversion so that libjpeg can decode at a reduced scale
    (draft mode, `jpeg.thumbnail`). Converted as a whole, a palette or 16-bit image would get
    a full-size true-colour copy, and alpha another one, premultiplied, inside resize(): the same
    pixels in bands avoid both.
    """
    if image.format in ("JPEG", "MPO"):
        return to_working_mode(jpeg.thumbnail(image, box))
    final_size = thumbnail_size(image.size, box)
    if final_size is not None:
        sample = to_working_mode(image.crop((0, 0, 1, 1)))
        reducer = StripReducer(sample.mode, image.size, final_size)
        if reducer.reduces:
            return reduce_in_bands(image, reducer, to_working_mode)
    image = to_working_mode(image)
    image.thumbnail(box, Image.Resampling.LANCZOS)
    return image


def _encode(image: Image.Image, output_format: str, jpeg_quality: int) -> bytes:
    """Encode with no metadata at all: Pillow's writers fall back to `info` (comments, profiles)."""
    image.info = {}
    buffer = io.BytesIO()
    if output_format == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = _flatten(image)
        image.save(buffer, "JPEG", quality=jpeg_quality, optimize=True)
    elif output_format == "PNG":
        image.save(buffer, "PNG")
    elif output_format == "WEBP":
        image.save(buffer, "WEBP", quality=jpeg_quality)
    elif output_format == "GIF":
        _gif_palette(image).save(buffer, "GIF")
    else:  # pragma: no cover - formats.output_format only names the formats handled above
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
        paletted = image.convert("RGB").quantize(colors=256, method=_GIF_QUANTIZER)
        paletted.info = {}
        return paletted
    rgba = image.convert("RGBA")
    transparent = rgba.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0, "1")
    paletted = rgba.convert("RGB").quantize(colors=_GIF_TRANSPARENT_INDEX, method=_GIF_QUANTIZER)
    paletted.paste(_GIF_TRANSPARENT_INDEX, mask=transparent)
    paletted.info = {"transparency": _GIF_TRANSPARENT_INDEX}
    return paletted
