"""The golden tolerance fails on defects a person sees and passes differences nobody sees.

Each case perturbs a copy of a golden (or renders the source the way the core does, with one
thing changed) and compares it with the golden through `compare_with_golden`. The comment on
each case is the value measured with Pillow 13.0.0 (libjpeg-turbo 3.2.0, libwebp 1.6.0); the
assertion message prints the measured values, so a drifting margin is visible when one fails.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageOps

from harness.fixtures import image_bytes
from harness.golden import (
    MAX_ALPHA_MAD,
    MAX_CHANNEL_MAD,
    MIN_SSIM_LUMA,
    compare_images,
    compare_with_golden,
    golden_path,
)
from thumbnailer import make_thumbnail

pytestmark = pytest.mark.golden

BOX = (128, 128)
QUALITY = 85


def golden(name: str) -> Image.Image:
    image = Image.open(golden_path(name))
    image.load()
    return image


def encode(image: Image.Image, image_format: str, quality: int = QUALITY) -> bytes:
    """Encode with the core's settings for `image_format`."""
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.save(buffer, "JPEG", quality=quality, optimize=True)
    elif image_format == "WEBP":
        image.save(buffer, "WEBP", quality=quality)
    else:
        image.save(buffer, image_format)
    return buffer.getvalue()


def render(
    name: str,
    *,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
    exif_transpose: bool = True,
    reducing_gap: float | None = 2.0,
) -> bytes:
    """The core's pipeline for an RGB JPEG or PNG source, with one knob turned.

    With the defaults this reproduces the golden (the `*-as-the-core` cases prove it), so a
    failure of a turned knob is due to that knob alone.
    """
    image = Image.open(io.BytesIO(image_bytes(name)))
    image_format = image.format
    sideways = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    image.thumbnail(BOX[::-1] if sideways and exif_transpose else BOX, resample, reducing_gap=reducing_gap)
    if exif_transpose:
        image = ImageOps.exif_transpose(image)
    return encode(image, image_format)


def at_quality(name: str, quality: int) -> Callable[[], bytes]:
    """The core's thumbnail of `name` at another JPEG/WebP quality."""
    return lambda: make_thumbnail(image_bytes(name), jpeg_quality=quality).data


def nearest(name: str) -> Callable[[], bytes]:
    """The core's pipeline with NEAREST instead of LANCZOS."""
    return lambda: render(name, resample=Image.Resampling.NEAREST)


def golden_edited(name: str, edit: Callable[[np.ndarray], np.ndarray]) -> bytes:
    """The golden's pixels (RGB or RGBA as stored) edited, re-encoded in the golden's format."""
    original = golden(name)
    pixels = np.asarray(original).astype(np.int16)
    edited = np.clip(edit(pixels), 0, 255).astype(np.uint8)
    # Re-encoding a JPEG golden costs a generation of JPEG loss, measured alone below.
    return encode(Image.fromarray(edited, original.mode), original.format)


def shifted_right(pixels: np.ndarray) -> np.ndarray:
    """One pixel to the right; the first column is repeated."""
    return np.concatenate([pixels[:, :1], pixels[:, :-1]], axis=1)


def shifted_down(pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([pixels[:1], pixels[:-1]], axis=0)


def red_cast(pixels: np.ndarray) -> np.ndarray:
    return pixels + np.array([12, 0, 0, 0][: pixels.shape[2]])


def alpha_flattened(pixels: np.ndarray) -> np.ndarray:
    """Composited onto white and made opaque, still stored as RGBA."""
    alpha = pixels[..., 3:4] / 255
    rgb = pixels[..., :3] * alpha + 255 * (1 - alpha)
    return np.concatenate([rgb, np.full_like(pixels[..., 3:4], 255)], axis=2)


def noise_of_one_level(pixels: np.ndarray) -> np.ndarray:
    """-1, 0 or +1 on every channel of every pixel (alpha too), seeded."""
    return pixels + np.random.default_rng(20240501).integers(-1, 2, pixels.shape)


def alpha_dropped(name: str) -> bytes:
    """The golden flattened onto white and written as RGB: the file has no alpha any more."""
    original = golden(name).convert("RGBA")
    white = Image.new("RGBA", original.size, (255, 255, 255, 255))
    return encode(Image.alpha_composite(white, original).convert("RGB"), original.format or "PNG")


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], bytes]
    # The start of the problem that must be reported, or None when the comparison must pass.
    caught_by: str | None


MUST_FAIL = {
    # A different resampling filter: aliasing on every edge.
    "nearest-jpeg": Case(  # SSIM 0.863
        "jpeg-baseline.jpg", nearest("jpeg-baseline.jpg"), "luma SSIM"
    ),
    "nearest-png": Case(  # SSIM 0.892
        "png-rgb.png", nearest("png-rgb.png"), "luma SSIM"
    ),
    # One pixel off: a crop or rounding bug.
    "shift-right-jpeg": Case(  # SSIM 0.862
        "jpeg-baseline.jpg", lambda: golden_edited("jpeg-baseline.jpg", shifted_right), "luma SSIM"
    ),
    "shift-down-png": Case(  # SSIM 0.865
        "png-rgb.png", lambda: golden_edited("png-rgb.png", shifted_down), "luma SSIM"
    ),
    "shift-right-rgba": Case(  # SSIM 0.858
        "png-rgba.png", lambda: golden_edited("png-rgba.png", shifted_right), "luma SSIM"
    ),
    # A colour cast of +12 on red: SSIM barely moves (0.999), the red MAD does (11.1).
    "red-cast-jpeg": Case("jpeg-baseline.jpg", lambda: golden_edited("jpeg-baseline.jpg", red_cast), "red"),
    "red-cast-png": Case("png-rgb.png", lambda: golden_edited("png-rgb.png", red_cast), "red"),  # 11.1
    # Lost transparency, kept as an opaque RGBA file: alpha MAD 196.
    "alpha-flattened-png": Case(
        "png-rgba.png", lambda: golden_edited("png-rgba.png", alpha_flattened), "alpha"
    ),
    # libwebp writes an opaque RGBA image without an alpha channel, so the mode check catches it.
    "alpha-flattened-webp": Case(
        "webp-alpha.webp", lambda: golden_edited("webp-alpha.webp", alpha_flattened), "mode"
    ),
    # Lost transparency, written as RGB: caught by the mode check before any pixel is compared.
    "alpha-dropped-png": Case("png-rgba.png", lambda: alpha_dropped("png-rgba.png"), "mode"),
    "alpha-dropped-tiff": Case("tiff-rgba.tiff", lambda: alpha_dropped("tiff-rgba.tiff"), "mode"),
    # EXIF orientation ignored: upside down (SSIM 0.32) or sideways (the size check).
    "exif-3-ignored": Case(
        "jpeg-exif-orientation-3.jpg",
        lambda: render("jpeg-exif-orientation-3.jpg", exif_transpose=False),
        "luma SSIM",
    ),
    "exif-6-ignored": Case(
        "jpeg-exif-orientation-6.jpg",
        lambda: render("jpeg-exif-orientation-6.jpg", exif_transpose=False),
        "size",
    ),
    # Visible JPEG blocking: quality 30 instead of 85.
    "quality-30-jpeg": Case(  # SSIM 0.921
        "jpeg-baseline.jpg", at_quality("jpeg-baseline.jpg", 30), "luma SSIM"
    ),
    "quality-30-grey-jpeg": Case(  # SSIM 0.924
        "jpeg-grayscale.jpg",
        at_quality("jpeg-grayscale.jpg", 30),
        "luma SSIM",
    ),
    "quality-30-small-jpeg": Case(  # SSIM 0.833
        "small-100x50.jpg", at_quality("small-100x50.jpg", 30), "luma SSIM"
    ),
    # WebP degrades more gracefully: quality 30 measures 0.967, the smallest margin here (0.008).
    "quality-30-webp": Case("webp-lossy.webp", at_quality("webp-lossy.webp", 30), "luma SSIM"),
    # A different output format with the same pixels.
    "png-instead-of-jpeg": Case(
        "jpeg-baseline.jpg", lambda: encode(golden("jpeg-baseline.jpg"), "PNG"), "format"
    ),
}

MUST_PASS = {
    # The render() helper reproduces the core, so the knobs above are the only difference.
    "jpeg-as-the-core": Case("jpeg-baseline.jpg", lambda: render("jpeg-baseline.jpg"), None),  # SSIM 1.0
    "png-as-the-core": Case("png-rgb.png", lambda: render("png-rgb.png"), None),  # SSIM 1.0
    "exif-6-as-the-core": Case(
        "jpeg-exif-orientation-6.jpg", lambda: render("jpeg-exif-orientation-6.jpg"), None
    ),
    # Quality 84 or 86 instead of 85: SSIM 0.992 / blue MAD 2.70 (JPEG), SSIM 0.986 (WebP).
    "quality-84-jpeg": Case("jpeg-baseline.jpg", at_quality("jpeg-baseline.jpg", 84), None),
    "quality-86-jpeg": Case("jpeg-baseline.jpg", at_quality("jpeg-baseline.jpg", 86), None),
    "quality-84-webp": Case("webp-lossy.webp", at_quality("webp-lossy.webp", 84), None),
    # One more generation of JPEG loss (a proxy recompressing): SSIM 0.999, blue MAD 2.32.
    "jpeg-reencoded": Case("jpeg-baseline.jpg", lambda: golden_edited("jpeg-baseline.jpg", np.copy), None),
    # +-1 level everywhere, alpha included: SSIM >= 0.997, MAD <= 0.65, alpha 0.44 (JPEG: plus a
    # re-encode, blue MAD 2.44).
    "noise-png": Case("png-rgb.png", lambda: golden_edited("png-rgb.png", noise_of_one_level), None),
    "noise-rgba": Case("png-rgba.png", lambda: golden_edited("png-rgba.png", noise_of_one_level), None),
    "noise-jpeg": Case(
        "jpeg-baseline.jpg", lambda: golden_edited("jpeg-baseline.jpg", noise_of_one_level), None
    ),
    # A decoder difference of the kind a libjpeg or Pillow update brings: full decode then
    # Lanczos instead of libjpeg's scaled IDCT (draft mode): SSIM 0.992, MAD 1.6. (Pillow
    # 11.0.0 and 12.0.0, with libjpeg-turbo 3.0.4 and 3.1.2, write byte-identical goldens but for
    # tall-10x2000.png, MAD 0.29.)
    "full-decode-jpeg": Case(
        "jpeg-baseline.jpg", lambda: render("jpeg-baseline.jpg", reducing_gap=None), None
    ),
    "full-decode-exif-6": Case(
        "jpeg-exif-orientation-6.jpg", lambda: render("jpeg-exif-orientation-6.jpg", reducing_gap=None), None
    ),
}


@pytest.mark.parametrize("case_id", sorted(MUST_FAIL))
def test_visible_defect_fails(case_id):
    case = MUST_FAIL[case_id]
    comparison = compare_with_golden(case.name, case.make())

    assert not comparison.passed, f"{case_id} passed but must fail; measured: {comparison.measures()}"
    assert any(problem.startswith(case.caught_by) for problem in comparison.problems), (
        f"{case_id} must be caught by the {case.caught_by!r} check; got {comparison.problems}"
    )


@pytest.mark.parametrize("case_id", sorted(MUST_PASS))
def test_invisible_difference_passes(case_id):
    case = MUST_PASS[case_id]
    comparison = compare_with_golden(case.name, case.make())

    assert comparison.passed, (
        f"{case_id} must pass: {comparison.problems}; measured: {comparison.measures()} "
        f"(MIN_SSIM_LUMA {MIN_SSIM_LUMA}, MAX_CHANNEL_MAD {MAX_CHANNEL_MAD}, MAX_ALPHA_MAD {MAX_ALPHA_MAD})"
    )


def test_identical_images_measure_perfect():
    data = golden_path("png-rgba.png").read_bytes()
    comparison = compare_images("png-rgba.png", data, data)

    assert comparison.ssim_luma == pytest.approx(1.0)
    assert set(comparison.mad.values()) == {0.0}


def test_undecodable_thumbnail_fails_with_the_reason():
    comparison = compare_with_golden("png-rgb.png", b"\x89PNG\r\n\x1a\n broken")

    assert not comparison.passed
    assert "cannot be decoded" in comparison.problems[0]


def test_missing_golden_fails_and_names_the_path(tmp_path, monkeypatch):
    thumbnail = golden_path("png-rgb.png").read_bytes()
    monkeypatch.setattr("harness.golden.GOLDEN_DIR", tmp_path)
    comparison = compare_with_golden("png-rgb.png", thumbnail)

    assert comparison.problems == (f"no golden at {tmp_path / 'png-rgb.png'}",)


def test_a_pass_never_hides_a_failure_of_the_same_image_in_the_report(tmp_path):
    """Unit and integration record into one report during `make test`: the deployed function's
    passing thumbnail must not replace the core's failing one (nor the other way round)."""
    from harness import golden

    failing = golden.Comparison(name="png-rgb.png", problems=("differs",), new_bytes=b"failing")
    passing = golden.Comparison(name="png-rgb.png", problems=(), new_bytes=b"passing")

    golden.record(failing, tmp_path)
    golden.record(passing, tmp_path)

    (entry,) = (tmp_path / "entries").glob("*.json")
    assert '"passed": false' in entry.read_text()
    assert (tmp_path / "new" / "png-rgb.png").read_bytes() == b"failing"
