"""The fast paths give what the generic Pillow path gives, and can never reject an image.

The committed fixtures are too small to reach these paths (they start at 4x the box for PNG and
WebP, 16x for progressive JPEG), so the sources here are generated at run time.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from harness.golden import compare_images, ssim_map
from tests.support.generated import FAST_PATH_SOURCES, encoded, photo_like
from thumbnailer import core, make_thumbnail
from thumbnailer.decoders import FAST_PATHS, FastPath, jpeg, libspng, strips, webp


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
    "jpeg-progressive-2048x1536.jpg": "jpeg-dc-scans",
}
# 16x a 128x96 thumbnail but not 16x the box's 128 px on its short side: only the thumbnail's own
# size gives 1/8 scale, the DC scans alone.
SOURCES = FAST_PATH_SOURCES | {
    "jpeg-progressive-2048x1536.jpg": lambda: encoded(
        photo_like((2048, 1536)), "JPEG", progressive=True, quality=90
    ),
}


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_streaming_paths_give_identical_bytes(case, generic_path, fast_path_calls):
    source = SOURCES[case]()

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


def test_libspng_loads_for_the_png_strip_path():
    assert libspng.load() is not None, "pyspng's libspng did not load: PNGs are unfiltered by Pillow, slower"


def png_with_row_filters(image: Image.Image, filters: list[int]) -> bytes:
    """`image` (RGB or RGBA) as a PNG whose rows use `filters` in turn (0 None ... 4 Paeth).

    A filter type above 4 (which no decoder knows) is written with the rows unfiltered.
    """
    pixels = np.asarray(image, dtype=np.int16)
    height, width, bands = pixels.shape
    rows = pixels.reshape(height, width * bands)
    up = np.vstack([np.zeros_like(rows[:1]), rows[:-1]])
    left = np.hstack([np.zeros_like(rows[:, :bands]), rows[:, :-bands]])
    up_left = np.hstack([np.zeros_like(up[:, :bands]), up[:, :-bands]])
    estimate = left + up - up_left
    near_left, near_up, near_up_left = (np.abs(estimate - x) for x in (left, up, up_left))
    paeth = np.where(
        (near_left <= near_up) & (near_left <= near_up_left),
        left,
        np.where(near_up <= near_up_left, up, up_left),
    )
    predictions = dict(enumerate((np.zeros_like(rows), left, up, (left + up) // 2, paeth)))
    raw = b"".join(
        bytes([kind])
        + ((rows[y] - predictions.get(kind, predictions[0])[y]) % 256).astype(np.uint8).tobytes()
        for y, kind in zip(range(height), filters * height, strict=False)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[bands], 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(raw)),
            chunk(b"IEND", b""),
        ]
    )


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("unfilter", ["libspng", "pillow"])
def test_every_row_filter_at_every_strip_start_gives_the_generic_paths_bytes(
    mode, unfilter, generic_path, fast_path_calls, monkeypatch
):
    # Strips of 9 (RGB) or 6 (RGBA) rows and filters in turns of 5: each filter type starts some
    # strip, where its row refers to the previous strip's last row (the context row).
    monkeypatch.setattr(strips, "_STRIP_BYTES", 1 << 14)
    if unfilter == "pillow":
        monkeypatch.setattr(libspng, "load", lambda: None)
    source = png_with_row_filters(photo_like((600, 900), mode), [0, 1, 2, 3, 4])
    assert Image.open(io.BytesIO(source)).tobytes() == photo_like((600, 900), mode).tobytes()

    fast = make_thumbnail(source)

    assert fast_path_calls == ["png-strips"]
    assert fast.data == generic_path(source).data


@pytest.mark.parametrize("unfilter", ["libspng", "pillow"])
def test_an_unknown_row_filter_is_corrupt_after_both_paths_tried(unfilter, monkeypatch):
    if unfilter == "pillow":
        monkeypatch.setattr(libspng, "load", lambda: None)
    source = png_with_row_filters(photo_like((600, 400)), [0, 1, 2, 3, 4, 5])

    with pytest.raises(core.CorruptImage, match="after the png-strips fast path failed"):
        make_thumbnail(source)


def luma_ssim(encoded_image: bytes, reference: Image.Image) -> float:
    weights = np.array([0.299, 0.587, 0.114])
    decoded = np.asarray(Image.open(io.BytesIO(encoded_image)).convert("RGB"), dtype=np.float64)
    return float(ssim_map(decoded @ weights, np.asarray(reference, dtype=np.float64) @ weights).mean())


@pytest.mark.parametrize("size", [(640, 480), (1024, 768), (2048, 1536)])
def test_jpeg_decoded_at_the_thumbnails_scale_is_as_close_to_an_exact_lanczos(size):
    # jpeg.thumbnail picks the libjpeg scale from the thumbnail's size (1/2, 1/4, 1/8 here),
    # Image.thumbnail from the box's (full size, 1/2, 1/4): the result must stay as close to a
    # Lanczos from every full-resolution pixel.
    source = encoded(photo_like(size), "JPEG", quality=90)
    full = Image.open(io.BytesIO(source))
    full.load()
    by_box = Image.open(io.BytesIO(source))
    by_box.thumbnail((128, 128), Image.Resampling.LANCZOS)
    exact = full.resize(by_box.size, Image.Resampling.LANCZOS)

    ours = make_thumbnail(source).data
    before = encoded(by_box, "JPEG", quality=85, optimize=True)

    assert Image.open(io.BytesIO(ours)).size == by_box.size
    assert luma_ssim(ours, exact) >= luma_ssim(before, exact) - 0.002
    assert compare_images("jpeg-scale", before, ours).passed


def test_jpeg_thumbnail_decodes_a_4_3_photo_at_the_scale_of_its_thumbnail():
    image = Image.open(io.BytesIO(encoded(photo_like((640, 480)), "JPEG")))

    thumbnail = jpeg.thumbnail(image, (128, 128))

    assert thumbnail.size == (128, 96)
    assert image.size == (320, 240)  # drafted at 1/2; Image.thumbnail decodes it at full size


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
