"""Thumbnails are sRGB: colour patches tagged with real ICC profiles, checked against references.

The profiles come from other projects (the corpus, `make corpus`): Display P3 as Apple embeds it
in phone photos and Argyll's, Adobe RGB as cameras embed it and colord's, a FOGRA39 CMYK print
profile (Scribus), grey profiles from Pillow's test data. Each case writes flat patches tagged
with a profile and reads the patches' centres back from the thumbnail (Lanczos leaves the inside
of a flat patch exactly flat). RGB profiles are checked against an independent reference, the
published primaries and tone curves of each colour space, in numpy; grey ones against their own
tone curve, read from the profile; CMYK, which has no closed form, against LittleCMS converting
the full-size source directly.
"""

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from thumbnailer import make_thumbnail

PATCH = 200
# Levels of 255 a patch may differ by: 8-bit rounding at the source and in the thumbnail (1), and
# the profiles' own encoding of primaries and curves (s15Fixed16, 1024-point curves): at most 1.
# The defect this catches, a profile ignored or copied, moves these patches by 8 to 60 levels.
TOLERANCE = 2
# JPEG thumbnails of the CMYK JPEG source: quality 85 and chroma subsampling move the centre of a
# 200-pixel flat patch by up to 2 levels more (measured: 3).
JPEG_TOLERANCE = 4

RGB_PATCHES = [(200, 100, 50), (60, 140, 200), (128, 128, 128), (240, 230, 220), (255, 0, 0)]
CMYK_PATCHES = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 200, 255, 0), (30, 30, 30, 200), (100, 50, 0, 20)]
GREY_PATCHES = [30, 90, 128, 200, 250]

# xy chromaticities of the primaries (all with the D65 white point) and the tone curve of each space.
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
DISPLAY_P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
ADOBE_RGB_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
D65 = (0.3127, 0.3290)
ADOBE_RGB_GAMMA = 563 / 256


def srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def rgb_to_xyz(primaries) -> np.ndarray:
    """The RGB-to-XYZ matrix of a colour space from its primaries and white (SMPTE RP 177)."""
    columns = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    white = np.array([D65[0] / D65[1], 1.0, (1 - D65[0] - D65[1]) / D65[1]])
    return columns * np.linalg.solve(columns, white)


def expected_rgb(patches, primaries, decode) -> list[tuple[int, ...]]:
    """Independent reference: decode, to XYZ, to linear sRGB, clip, sRGB-encode."""
    values = np.array(patches, dtype=float) / 255
    xyz = decode(values) @ rgb_to_xyz(primaries).T
    linear_srgb = xyz @ np.linalg.inv(rgb_to_xyz(SRGB_PRIMARIES)).T
    return [tuple(round(c) for c in row) for row in srgb_encode(linear_srgb) * 255]


def patches_image(mode: str, colours) -> Image.Image:
    image = Image.new(mode, (PATCH * len(colours), PATCH))
    for index, colour in enumerate(colours):
        image.paste(colour, (index * PATCH, 0, (index + 1) * PATCH, PATCH))
    return image


def encoded(image: Image.Image, image_format: str, icc_profile: bytes, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, icc_profile=icc_profile, **options)
    return buffer.getvalue()


def patch_centres(thumbnail_data: bytes, count: int) -> list[tuple[int, ...]]:
    """The colour at the centre of each patch of a thumbnail of `count` patches side by side."""
    with Image.open(io.BytesIO(thumbnail_data)) as image:
        assert "icc_profile" not in image.info, "a thumbnail must carry no profile"
        width, height = image.size
        step = width / count
        return [image.getpixel((int(step * (i + 0.5)), height // 2)) for i in range(count)]


def assert_close(actual, expected, tolerance):
    differences = [
        max(abs(a - e) for a, e in zip(np.atleast_1d(act), np.atleast_1d(exp), strict=True))
        for act, exp in zip(actual, expected, strict=True)
    ]
    assert max(differences) <= tolerance, f"patches {actual}, expected {expected}"


@pytest.fixture(scope="session")
def corpus_file(corpus_directory, corpus_manifest):
    """Callable: the bytes of a corpus file by its path relative to the corpus."""

    def read(relative: str) -> bytes:
        return (corpus_directory / relative).read_bytes()

    return read


@pytest.fixture(scope="session")
def embedded_profile(corpus_file):
    """Callable: the ICC profile embedded in a corpus image (what cameras and phones write)."""

    def profile(relative: str) -> bytes:
        with Image.open(io.BytesIO(corpus_file(relative))) as image:
            return image.info["icc_profile"]

    return profile


RGB_CASES = {
    "Display P3, Apple's, embedded in a phone's MPO": (
        "embedded",
        "pillow/images/frame_size.mpo",
        DISPLAY_P3_PRIMARIES,
        srgb_decode,
    ),
    "Display P3, Argyll's": ("file", "icc/argyll/DisplayP3.icm", DISPLAY_P3_PRIMARIES, srgb_decode),
    "Adobe RGB, embedded in a camera JPEG": (
        "embedded",
        "pillow/images/xmp_test.jpg",
        ADOBE_RGB_PRIMARIES,
        lambda v: v**ADOBE_RGB_GAMMA,
    ),
    "Adobe RGB, colord's": (
        "file",
        "icc/colord/AdobeRGB1998.icc",
        ADOBE_RGB_PRIMARIES,
        lambda v: v**ADOBE_RGB_GAMMA,
    ),
}


@pytest.mark.parametrize("case", sorted(RGB_CASES))
@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_wide_gamut_rgb_becomes_srgb(case, image_format, corpus_file, embedded_profile):
    where, relative, primaries, decode = RGB_CASES[case]
    profile = embedded_profile(relative) if where == "embedded" else corpus_file(relative)
    source = encoded(
        patches_image("RGB", RGB_PATCHES),
        image_format,
        profile,
        **({"quality": 100, "subsampling": 0} if image_format == "JPEG" else {}),
    )

    thumbnail = make_thumbnail(source)

    tolerance = JPEG_TOLERANCE if image_format == "JPEG" else TOLERANCE
    assert_close(
        patch_centres(thumbnail.data, len(RGB_PATCHES)),
        expected_rgb(RGB_PATCHES, primaries, decode),
        tolerance,
    )


def test_an_srgb_profile_changes_nothing(corpus_file):
    source = encoded(patches_image("RGB", RGB_PATCHES), "PNG", corpus_file("icc/colord/sRGB.icc"))

    assert_close(patch_centres(make_thumbnail(source).data, len(RGB_PATCHES)), RGB_PATCHES, TOLERANCE)


@pytest.mark.parametrize("image_format", ["TIFF", "JPEG"])
def test_cmyk_with_a_print_profile_becomes_srgb(image_format, corpus_file):
    profile = corpus_file("icc/scribus/ISOcoated_v2_300_bas.icc")
    image = patches_image("CMYK", CMYK_PATCHES)
    source = encoded(image, image_format, profile, **({"quality": 100} if image_format == "JPEG" else {}))
    reference = ImageCms.profileToProfile(
        Image.open(io.BytesIO(source)),
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    )
    expected = [reference.getpixel((PATCH * i + PATCH // 2, PATCH // 2)) for i in range(len(CMYK_PATCHES))]

    thumbnail = make_thumbnail(source)

    assert thumbnail.format == {"TIFF": "PNG", "JPEG": "JPEG"}[image_format]
    tolerance = JPEG_TOLERANCE if image_format == "JPEG" else TOLERANCE
    assert_close(patch_centres(thumbnail.data, len(CMYK_PATCHES)), expected, tolerance)
    # Paper white stays white; without the profile Pillow's plain conversion would also give
    # white there, but pure cyan would be (0, 255, 255) instead of the print cyan near (0, 160, 225).
    assert patch_centres(thumbnail.data, len(CMYK_PATCHES))[1][0] < 60


GREY_CASES = {
    "sGrey (a 20-point sRGB curve), Pillow's test profile": ("file", "pillow/icc/sGrey-v2-nano.icc"),
    "Apple's Generic Gray, embedded in a TIFF": ("embedded", "pillow/images/pport_g4.tif"),
}


def tone_curve(profile: bytes):
    """The grey profile's own kTRC 'curv' table, interpolated linearly as ICC.1 specifies."""
    (count,) = struct.unpack_from(">I", profile, 128)
    for index in range(count):
        signature, offset, _ = struct.unpack_from(">4sII", profile, 132 + 12 * index)
        if signature == b"kTRC" and profile[offset : offset + 4] == b"curv":
            (points,) = struct.unpack_from(">I", profile, offset + 8)
            table = np.array(struct.unpack_from(f">{points}H", profile, offset + 12)) / 65535
            return lambda v: np.interp(v, np.linspace(0, 1, points), table)
    raise AssertionError("no kTRC curve table in the profile")


@pytest.mark.parametrize("case", sorted(GREY_CASES))
def test_grey_profiles_map_onto_srgb_greys(case, corpus_file, embedded_profile):
    where, relative = GREY_CASES[case]
    profile = embedded_profile(relative) if where == "embedded" else corpus_file(relative)
    source = encoded(patches_image("L", GREY_PATCHES), "PNG", profile)

    thumbnail = make_thumbnail(source)

    assert Image.open(io.BytesIO(thumbnail.data)).mode == "L"
    luminance = tone_curve(profile)(np.array(GREY_PATCHES) / 255)
    expected = [round(v) for v in srgb_encode(luminance) * 255]
    assert_close(patch_centres(thumbnail.data, len(GREY_PATCHES)), expected, TOLERANCE)
