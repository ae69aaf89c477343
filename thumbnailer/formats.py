"""Which uploads are images we accept, which format their thumbnail gets, and what the rest are.

Formats are told apart by their signature (magic bytes) before any decoder runs: only the
decoders of ACCEPTED_FORMATS ever see untrusted bytes. A file in another format is named from
its signature alone, without being parsed.
"""

from PIL import (
    BmpImagePlugin,  # noqa: F401 - registers the format (see ACCEPTED_FORMATS)
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

# Decoders the service accepts, as Pillow names them. The JPEG decoder also opens MPO, what
# phones write for JPEGs with an embedded preview; it is a JPEG for every purpose here.
# TIFF's plugin (the largest), AVIF's and HEIF's (pillow-heif: libheif and libde265) are imported
# only when such a file arrives (`register_decoder`), so a JPEG's cold start does not load them.
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF")

# Thumbnail format per source format: web formats keep their format. BMP and TIFF, which
# browsers do not display, become PNG (lossless, keeps transparency). HEIF and AVIF, which not
# every browser displays, become JPEG, or PNG when the image has an alpha channel.
_OUTPUT_FORMATS = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "GIF": "GIF",
    "WEBP": "WEBP",
    "BMP": "PNG",
    "TIFF": "PNG",
}
_PHOTO_FORMATS = frozenset({"HEIF", "AVIF"})

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}

# Formats whose Pillow decoder already applies the EXIF orientation while it loads (and reports
# the upright size): TIFF since Pillow 13; libheif applies HEIF's irot/imir and pillow-heif resets
# the EXIF tag. Applying the tag again would turn the picture twice.
ORIENTED_BY_DECODER = frozenset({"TIFF", "HEIF"})

_TIFF_PREFIXES = (b"MM\x00\x2a", b"II\x2a\x00", b"MM\x00\x2b", b"II\x2b\x00")
# ISO base media file brands (the ftyp box) of the still-image formats we decode.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)

_ACCEPTED_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    *((prefix, "TIFF") for prefix in _TIFF_PREFIXES),
)

# Signatures of image formats we do not accept, to name them in the rejection without parsing.
_REFUSED_SIGNATURES = (
    (b"8BPS", "PSD"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"DDS ", "DDS"),
    (b"qoif", "QOI"),
    (b"SIMPLE  =", "FITS"),
    (b"icns", "ICNS"),
    (b"BLP1", "BLP"),
    (b"BLP2", "BLP"),
    (b"\x01\xda", "SGI"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"/* XPM */", "XPM"),
    (b"gimp xcf", "XCF"),
    (b"FORM", "IFF"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"P1\n", "PBM"),
    (b"P4\n", "PBM"),
    (b"P2\n", "PGM"),
    (b"P5\n", "PGM"),
    (b"P3\n", "PPM"),
    (b"P6\n", "PPM"),
    (b"P7\n", "PAM"),
    (b"Pf\n", "PFM"),
    (b"PF\n", "PFM"),
)


def accepted_format(data: bytes) -> str | None:
    """The accepted format `data` claims by its signature, or None."""
    for signature, name in _ACCEPTED_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    brands = _iso_brands(data)
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def refused_format(data: bytes) -> str | None:
    """The name of the (not accepted) image format `data` claims by its signature, or None."""
    for signature, name in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:1] == b"\x0a" and data[1:2] in b"\x00\x02\x03\x04\x05" and data[2:3] == b"\x01":
        return "PCX"
    if data[4:8] == b"ftyp":
        return f"ISO media ({bytes(data[8:12]).decode('latin-1').strip()!r})"
    return None


def register_decoder(name: str) -> None:
    """Import the Pillow plugin of an accepted format that is not loaded at start-up."""
    if name == "TIFF":
        from PIL import TiffImagePlugin  # noqa: F401
    elif name == "AVIF":
        from PIL import AvifImagePlugin  # noqa: F401
    elif name == "HEIF" and "HEIF" not in Image.OPEN:
        from pillow_heif import register_heif_opener

        # No embedded previews (draft() would pick one), depth or auxiliary images: just the picture.
        register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def output_format(source_format: str, mode: str) -> str:
    """The format of the thumbnail of a `source_format` image that has `mode` when encoded."""
    if source_format in _PHOTO_FORMATS:
        return "PNG" if mode in ("RGBA", "LA") else "JPEG"
    return _OUTPUT_FORMATS[source_format]


def _iso_brands(data: bytes) -> frozenset[bytes]:
    """Major and compatible brands of an ISO base media file's leading ftyp box."""
    if data[4:8] != b"ftyp":
        return frozenset()
    size = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    return frozenset({data[8:12], *(data[offset : offset + 4] for offset in range(16, size - 3, 4))})
