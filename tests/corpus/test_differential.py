"""Differential test: every image of the third-party corpus through `make_thumbnail` and the reference.

The corpus (`make corpus`: Pillow's and pillow-heif's test images, sample photos) holds every mode,
damaged files, bombs and formats we refuse. The reference (tests/support/corpus.py) is Pillow's
plain generic path with the same contract. A file fails when:

- the reference thumbnails it but `make_thumbnail` rejects it (a `PermanentError` of any reason);
- `make_thumbnail` raises anything but a `PermanentError`, or writes bytes that do not decode as
  the format it declares;
- the sizes differ by more than 1 px, or ours does not fit the box (even where the reference
  rejects the file: that case is otherwise informative only);
- transparency is lost or invented (JPEG output is compared with the reference on white);
- the pixels differ visibly (TOLERANCES).

Files the core is known to treat differently are listed in KNOWN_DIFFERENCES with the reason; they
are strict xfails, so a fixed one fails until it is removed from the list. The session writes
<corpus>/report.json: counts per outcome and each file's outcome and measures.
"""

import time
from dataclasses import dataclass

import pytest

from tests.support.corpus import (
    OPAQUE_OUTPUTS,
    CorpusMissing,
    ReferenceRejected,
    Tolerance,
    candidate_images,
    compare,
    corpus_dir,
    decode,
    describe,
    load_manifest,
    reference_or_rejection,
    run_isolated,
    within_box,
)
from thumbnailer import make_thumbnail
from thumbnailer.errors import PermanentError

# {path relative to the corpus: why the core's thumbnail may differ from the reference's}
KNOWN_DIFFERENCES: dict[str, str] = {}

# Pixel tolerances per output format: luma SSIM and mean absolute difference (MAD, levels of 255)
# per channel over grey, as in harness/golden.py, against the reference as the format writes
# it (JPEG and WebP encoded at quality 85: the encoder's own loss is the same in any correct
# pipeline). Measured on this corpus with Pillow 13.0.0 (worst file in brackets); every limit lies
# between the two groups:
#
# Invisible: the committed core's correct thumbnails vs the reference: JPEG SSIM >= 0.984, MAD
# <= 3.2 (fujifilm.mpo, libjpeg's reduced-size decode), PNG and WebP 1.0, GIF (fast octree
# palette) >= 0.979, MAD <= 2.3, alpha MAD <= 1.8. Variants of the reference: +-1 level of noise
# before encoding, JPEG >= 0.932 (pil_sample_rgb.jpg: red text, the encoder's rounding flips) and
# WebP >= 0.979; quality 84: JPEG >= 0.971, MAD <= 5.9 (app13.jpg, 4x4 px), WebP >= 0.984;
# exact Lanczos instead of reducing_gap=2: >= 0.969, MAD <= 4.6 (imagedraw_ellipse_various_sizes.png);
# libjpeg decoding at 1/8 scale straight to the box: >= 0.947 (retina.jpg), MAD <= 6.3; median
# cut palette instead of octree >= 0.982. 16-bit samples truncated instead of rounded: 1 level,
# which Tolerance.max_invisible_difference (4 levels) lets through with the SSIM of flat images.
#
# Defects: EXIF orientation ignored, SSIM <= 0.36 (JPEG, WebP), MAD >= 13; TIFF orientation
# applied twice 0.14-0.62; transparency dropped, alpha MAD p50 255 (and `transparency lost`);
# a tRNS colour key kept through the resize 0.60, alpha MAD 33; a profile ignored, MAD 11.9-19.8
# for rocket.jpg, icc_profile_big.jpg, color.png, page.png (grey gamma); 1-px shift, SSIM p50
# 0.83 (JPEG), 82-87 % of changed files caught; +12 red cast MAD 12 where red does not clip;
# NEAREST instead of LANCZOS 60-65 % caught. Not caught here: Adobe RGB and Display P3 photos
# of muted colours shown untransformed (xmp_test.jpg MAD 2.4, frame_size.mpo 0.6: JPEG's own
# noise), BILINEAR (3 of 295), quality 70 (8 of 100): the goldens and colour tests cover those.
#
# Hence SSIM 0.95, but 0.90 for JPEG (+-1 level before encoding already costs 0.932) and GIF (its
# palette is re-quantised: the fast octree measures 0.90 on the fixtures' gradients, see
# bench/gif_palettes.py); MAD 8 (invisible <= 6.3, defects >= 11.9); alpha MAD 3 (invisible
# <= 1.0 outside GIF), 6 for GIF's one bit of alpha (1.8 measured).
TOLERANCES = {
    "JPEG": Tolerance(min_ssim_luma=0.90, max_channel_mad=8.0, max_alpha_mad=3.0),
    "WEBP": Tolerance(min_ssim_luma=0.95, max_channel_mad=8.0, max_alpha_mad=3.0),
    "PNG": Tolerance(min_ssim_luma=0.95, max_channel_mad=8.0, max_alpha_mad=3.0),
    "GIF": Tolerance(min_ssim_luma=0.90, max_channel_mad=8.0, max_alpha_mad=6.0),
}

MISSING_ID = "corpus-missing"


def pytest_generate_tests(metafunc):
    """One test per corpus image, named by its path in the corpus; one placeholder without a corpus."""
    if "corpus_image" not in metafunc.fixturenames:
        return
    directory = corpus_dir()
    try:
        paths = candidate_images(load_manifest(directory), directory)
    except CorpusMissing:
        metafunc.parametrize("corpus_image", [pytest.param(None, id=MISSING_ID)])
        return
    params = [
        pytest.param(
            path,
            id=path,
            marks=[pytest.mark.xfail(reason=KNOWN_DIFFERENCES[path], strict=True)]
            if path in KNOWN_DIFFERENCES
            else [],
        )
        for path in paths
    ]
    metafunc.parametrize("corpus_image", params)


def test_thumbnail_agrees_with_reference(corpus_image, corpus_manifest, corpus_directory, corpus_report):
    data = (corpus_directory / corpus_image).read_bytes()
    started = time.perf_counter()
    outcome = differential_outcome(data)
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    outcome["known_difference"] = corpus_image in KNOWN_DIFFERENCES
    corpus_report.record(corpus_image, outcome)
    if outcome["failed"]:
        pytest.fail(f"{corpus_image}: {outcome['category']}: {outcome['detail']}", pytrace=False)


def differential_outcome(data: bytes) -> dict:
    """Run both thumbnailers on `data`, each in a child process; the outcome's category and details."""
    reference = _reference(data)
    ours = run_isolated(_ours, data)
    if ours.failure is not None:
        return _outcome("crash", True, f"make_thumbnail {ours.failure}")
    if isinstance(ours.value, str):
        return _outcome("error", True, ours.value)
    if isinstance(ours.value, Rejection):
        rejection = ours.value
        if isinstance(reference, ReferenceRejected):
            detail = f"ours: {rejection.message}; reference: {reference}"
            return _outcome("rejected_by_both", False, detail, reason=rejection.reason)
        detail = f"ours rejected it ({rejection.reason}: {rejection.message}); the reference gives "
        detail += describe(reference.image)
        return _outcome("ours_rejected_reference_ok", True, detail, reason=rejection.reason)

    thumbnail = ours.value
    try:
        image = decode(thumbnail.data)
    except Exception as exc:  # undecodable bytes are a bug, whatever the decoder raises
        return _outcome("bad_output", True, f"our {thumbnail.format} thumbnail does not decode: {exc!r}")
    if image.format != thumbnail.format:
        return _outcome("bad_output", True, f"the bytes are {image.format}, declared {thumbnail.format}")
    if thumbnail.format not in TOLERANCES:
        return _outcome("bad_output", True, f"{thumbnail.format} is not an output format of the contract")
    if not within_box(image.size):
        return _outcome("box_violation", True, f"{describe(image)} does not fit the box")
    if isinstance(reference, ReferenceRejected):
        return _outcome(
            "reference_rejected_ours_ok", False, f"ours gives {describe(image)}; reference: {reference}"
        )

    tolerance = TOLERANCES[thumbnail.format]
    comparison = compare(reference.image, image, thumbnail.format, tolerance)
    if comparison.category is None and image.size != reference.image.size:
        # One pixel of rounding apart: compare the pixels with the reference made at our size.
        reference = _reference(data, image.size)
        comparison = compare(reference.image, image, thumbnail.format, tolerance)
    detail = (
        f"ours {describe(image)}, reference {describe(reference.image)} from {reference.source_format} "
        f"{reference.source_mode} ({reference.colour}"
        f"{', on white' if thumbnail.format in OPAQUE_OUTPUTS else ''})"
    )
    if comparison.problems:
        detail = f"{'; '.join(comparison.problems)}; {detail}"
    category = f"{comparison.category}_mismatch" if comparison.category else "thumbnailed_by_both"
    measures = {
        "ssim_luma": comparison.ssim_luma,
        "mad": comparison.mad,
        "max_difference": comparison.max_difference,
    }
    return _outcome(category, bool(comparison.problems), detail, output=thumbnail.format, **measures)


@dataclass(frozen=True)
class Rejection:
    """A `PermanentError` raised by make_thumbnail, as plain data (it crosses a process boundary)."""

    reason: str
    message: str


def _ours(data: bytes):
    """make_thumbnail's Thumbnail, its Rejection, or any other exception described."""
    try:
        return make_thumbnail(data)
    except PermanentError as exc:
        return Rejection(exc.reason, f"{exc}")
    except Exception as exc:  # the point: anything but a PermanentError is a bug
        return f"{type(exc).__name__}: {exc}"


def _reference(data: bytes, size: tuple[int, int] | None = None):
    """The reference's thumbnail or rejection; a crash of its decoder counts as a rejection."""
    result = run_isolated(reference_or_rejection, data, size)
    return ReferenceRejected("crash", result.failure) if result.failure else result.value


def _outcome(category: str, failed: bool, detail: str, **extra) -> dict:
    return {"category": category, "failed": failed, "detail": detail, **extra}
