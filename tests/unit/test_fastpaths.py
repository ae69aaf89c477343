"""The fast paths give what the generic Pillow path gives, and can never reject an image.

The committed fixtures are too small to reach these paths (they start at 4x the box for PNG and
WebP, 16x for progressive JPEG), so the sources here are generated at run time.
"""

import io

import pytest
from PIL import Image

from tests.support.generated import FAST_PATH_SOURCES, encoded, photo_like
from tests.support.golden import compare_images
from thumbnailer import core, make_thumbnail
from thumbnailer.decoders import FAST_PATHS, FastPath, webp


@pytest.fixture
def generic_path(monkeypatch):
    """Callable: make_thumbnail with every fast path switched off (Pillow decodes everything)."""

    def run(data: bytes):
        with monkeypatch.context() as patched:
            patched.setattr(core, "FAST_PATHS", ())
            return make_thumbnail(data)

    return run


@pytest.fixture
def fast_path_calls(monkeypatch):
    """Records which fast paths returned a result, to prove the test exercised them."""
    used = []

    def spying(path: FastPath) -> FastPath:
        def reduce(image, data, box):
            result = path.reduce(image, data, box)
            if result is not None:
                used.append(path.name)
            return result

        return FastPath(path.name, path.formats, reduce)

    monkeypatch.setattr(core, "FAST_PATHS", tuple(spying(path) for path in FAST_PATHS))
    return used


EXACT_CASES = {
    "png-rgb-1200x800.png": "png-strips",
    "png-rgba-800x1200.png": "png-strips",
    "jpeg-progressive-3200x2100.jpg": "jpeg-dc-scans",
}


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_streaming_paths_give_identical_bytes(case, generic_path, fast_path_calls):
    source = FAST_PATH_SOURCES[case]()

    fast = make_thumbnail(source)

    assert fast_path_calls == [EXACT_CASES[case]]
    assert fast.data == generic_path(source).data


@pytest.mark.parametrize("case", ["webp-lossy-1200x900.webp", "webp-lossless-alpha-1200x900.webp"])
def test_webp_reduced_decode_is_within_the_golden_tolerance(case, generic_path, fast_path_calls):
    assert webp._libwebp() is not None, "Pillow's bundled libwebp did not load: WebP takes the slow path"
    source = FAST_PATH_SOURCES[case]()

    fast = make_thumbnail(source)

    assert fast_path_calls == ["webp-scaled-decode"]
    # libwebp averages while it decodes instead of Lanczos on every pixel: not the same bytes,
    # but no visible difference, which is what the golden tolerance measures.
    comparison = compare_images(case, generic_path(source).data, fast.data)
    assert comparison.passed, comparison.problems


# Flat colour compresses so well that the PNG path's inflater ends up holding decoded rows with
# no input left. Before the fix, 29 (RGB), 26 (RGBA) and 12 (L) of these 120 sizes were rejected
# as "ends before the last row". From 512 px wide the strip path applies to the 128 px box.
FLAT_SIZES = [(width, width * 3 // 4) for width in range(520, 1720, 10)]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_flat_colour_pngs_of_every_size_take_the_strip_path_to_the_same_bytes(
    mode, generic_path, fast_path_calls
):
    for size in FLAT_SIZES:
        source = encoded(Image.new(mode, size, "white"), "PNG")
        fast = make_thumbnail(source)
        assert fast_path_calls.pop() == "png-strips", size
        assert fast.data == generic_path(source).data, size


def failing(path: FastPath, error: Exception) -> FastPath:
    """`path` with a bug: it raises `error` for every image it is given."""

    def reduce(image, data, box):
        raise error

    return FastPath(path.name, path.formats, reduce)


@pytest.mark.parametrize(
    "case", ["png-rgb-1200x800.png", "jpeg-progressive-3200x2100.jpg", "webp-lossy-1200x900.webp"]
)
@pytest.mark.parametrize("error", [OSError("the image data ends early"), ZeroDivisionError("bug")])
def test_a_failing_fast_path_falls_back_to_the_generic_path_and_says_so(
    case, error, generic_path, monkeypatch
):
    source = FAST_PATH_SOURCES[case]()
    expected = generic_path(source)
    monkeypatch.setattr(core, "FAST_PATHS", tuple(failing(path, error) for path in FAST_PATHS))

    thumbnail = make_thumbnail(source)

    assert thumbnail.data == expected.data
    [failure] = thumbnail.fast_path_failures
    assert failure.error == f"{type(error).__name__}: {error}"
    assert failure.name in {path.name for path in FAST_PATHS if thumbnail.source_format in path.formats}


def test_a_damaged_image_is_corrupt_only_after_the_generic_path_failed_too(monkeypatch):
    truncated = FAST_PATH_SOURCES["png-rgb-1200x800.png"]()[:-5000]
    monkeypatch.setattr(core, "FAST_PATHS", tuple(failing(path, OSError("bug")) for path in FAST_PATHS))

    with pytest.raises(core.CorruptImage, match="after the png-strips fast path failed: OSError: bug"):
        make_thumbnail(truncated)


def test_an_exception_from_our_own_code_is_raised_not_reported_as_corrupt(monkeypatch):
    def broken(image, icc_profile):
        raise KeyError("a bug in the colour step")

    monkeypatch.setattr(core, "to_srgb", broken)

    with pytest.raises(KeyError, match="a bug in the colour step"):
        make_thumbnail(encoded(photo_like((300, 200)), "PNG"))


def test_progressive_jpeg_with_restart_intervals_takes_the_generic_path(fast_path_calls):
    buffer = io.BytesIO()
    photo_like((3200, 2100)).save(buffer, "JPEG", progressive=True, restart_marker_blocks=4)

    assert make_thumbnail(buffer.getvalue()).width == 128
    assert fast_path_calls == []
