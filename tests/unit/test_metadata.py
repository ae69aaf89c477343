"""Thumbnails carry pixels only: no EXIF, XMP, GPS, comments, text chunks or colour profile.

Each case uploads a source full of metadata and reads the thumbnail's own container structure
(segments, chunks, blocks), not Pillow's `info`.
"""

import io

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from harness.fixtures import image_bytes
from tests.support.containers import gif_blocks, jpeg_segments, png_chunks, webp_chunks
from tests.support.generated import photo_like
from thumbnailer import formats, make_thumbnail

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description dc:creator="x"/></rdf:RDF></x:xmpmeta>'
COMMENT = "private comment: home address"


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x013B] = "Photographer Name"  # Artist
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS IFD
    return exif


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def source(image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture = photo_like((400, 300), "RGBA" if image_format in ("PNG", "WEBP", "TIFF") else "RGB")
    picture.save(buffer, image_format, **options)
    return buffer.getvalue()


def png_text() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", COMMENT)
    info.add_text("Author", "someone", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return info


SOURCES = {
    "jpeg": lambda: source(
        "JPEG", exif=exif_with_gps(), icc_profile=srgb_profile(), comment=COMMENT, xmp=XMP, dpi=(300, 300)
    ),
    "png": lambda: source(
        "PNG", pnginfo=png_text(), exif=exif_with_gps(), icc_profile=srgb_profile(), dpi=(300, 300)
    ),
    "webp": lambda: source("WEBP", exif=exif_with_gps(), icc_profile=srgb_profile(), xmp=XMP),
    "tiff": lambda: source(
        "TIFF", icc_profile=srgb_profile(), description=COMMENT, tiffinfo={0x010F: "CameraMaker"}
    ),
    "gif": lambda: source("GIF", comment=COMMENT, loop=0),
    # Third-party HEIC (pillow-heif's test data) with EXIF, XMP and IPTC.
    "heic": lambda: image_bytes("heic-grey-exif-xmp-iptc.heic"),
}

# What each output may hold: structure and pixels. JFIF's APP0 says only "this is a JFIF file"
# (its density fields are reset to 1:1 without dpi); GIF's 0xF9 extension is the transparency
# and delay control; WebP's VP8X header appears for alpha, with none of its metadata flags set.
ALLOWED = {
    "JPEG": {"APP0:JFIF", "DQT", "DHT", "SOF0", "SOF2", "SOS"},
    "PNG": {"IHDR", "PLTE", "tRNS", "IDAT", "IEND"},
    "GIF": {"image", "extension:F9"},
    "WEBP": {"VP8 ", "VP8L", "ALPH", "VP8X:"},
}
PARTS = {"JPEG": jpeg_segments, "PNG": png_chunks, "GIF": gif_blocks, "WEBP": webp_chunks}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_thumbnail_holds_no_metadata_and_no_profile(name):
    data = SOURCES[name]()
    thumbnail = make_thumbnail(data)

    parts = PARTS[thumbnail.format](thumbnail.data)

    assert set(parts) <= ALLOWED[thumbnail.format], parts
    assert COMMENT.encode() not in thumbnail.data
    assert b"CameraMaker" not in thumbnail.data
    assert b"xmpmeta" not in thumbnail.data


def test_the_sources_really_carry_the_metadata():
    # Guards the test above: each source's own structure shows what must not reach the thumbnail.
    assert {"APP1:Exif", "APP2:ICC_PROFILE", "COM"} <= set(jpeg_segments(SOURCES["jpeg"]()))
    assert {"tEXt", "zTXt", "iTXt", "eXIf", "iCCP", "pHYs"} <= set(png_chunks(SOURCES["png"]()))
    assert "extension:FE" in gif_blocks(SOURCES["gif"]())
    assert "VP8X:ICC,EXIF,XMP" in webp_chunks(SOURCES["webp"]())
    formats.register_decoder("HEIF")
    with Image.open(io.BytesIO(SOURCES["heic"]())) as heic:
        assert heic.info.get("exif")
        assert heic.info.get("xmp")
