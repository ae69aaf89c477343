"""The fast decoding paths give what the generic Pillow path gives, on sources big enough to use them.

The committed fixtures are too small to reach these paths (they start at 4x the box for PNG and
WebP, 16x for progressive JPEG), so the sources here are generated at run time.
"""

import pytest

from tests.support.generated import FAST_PATH_SOURCES
from tests.support.golden import compare_images
from thumbnailer import core, fastpaths, make_thumbnail


@pytest.fixture
def generic_path(monkeypatch):
    """Callable: make_thumbnail with every fast path switched off (Pillow decodes everything)."""

    def run(data: bytes):
        with monkeypatch.context() as patched:
            patched.setattr(core, "png_thumbnail", lambda *args: None)
            patched.setattr(core, "webp_thumbnail", lambda *args: None)
            patched.setattr(core, "without_unused_scans", lambda image, data, box: image)
            return make_thumbnail(data)

    return run


@pytest.fixture
def fast_path_calls(monkeypatch):
    """Records which fast paths returned a result, to prove the test exercised them."""
    used = []
    for name in ("png_thumbnail", "webp_thumbnail", "without_unused_scans"):
        original = getattr(core, name)

        def spy(*args, _original=original, _name=name):
            result = _original(*args)
            # A path that does not apply returns None, or (JPEG) the image it was given.
            if result is not None and result is not args[0]:
                used.append(_name)
            return result

        monkeypatch.setattr(core, name, spy)
    return used


EXACT_CASES = {
    "png-rgb-1200x800.png": "png_thumbnail",
    "png-rgba-800x1200.png": "png_thumbnail",
    "jpeg-progressive-3200x2100.jpg": "without_unused_scans",
}


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_streaming_paths_give_identical_bytes(case, generic_path, fast_path_calls):
    source = FAST_PATH_SOURCES[case]()

    fast = make_thumbnail(source)

    assert fast_path_calls == [EXACT_CASES[case]]
    assert fast.data == generic_path(source).data


@pytest.mark.parametrize("case", ["webp-lossy-1200x900.webp", "webp-lossless-alpha-1200x900.webp"])
def test_webp_reduced_decode_is_within_the_golden_tolerance(case, generic_path, fast_path_calls):
    assert fastpaths._libwebp() is not None, "Pillow's bundled libwebp did not load: WebP takes the slow path"
    source = FAST_PATH_SOURCES[case]()

    fast = make_thumbnail(source)

    assert fast_path_calls == ["webp_thumbnail"]
    # libwebp averages while it decodes instead of Lanczos on every pixel: not the same bytes,
    # but no visible difference, which is what the golden tolerance measures.
    comparison = compare_images(case, generic_path(source).data, fast.data)
    assert comparison.passed, comparison.problems
