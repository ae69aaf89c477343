"""The pure core: bounds, aspect, orientation, formats, transparency and bad input."""

import ast
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

import thumbnailer
from harness.fixtures import INVALID_IMAGES, VALID_IMAGES, display_size, image_bytes
from thumbnailer import (
    CorruptImage,
    EmptySource,
    ImageTooComplex,
    ImageTooLarge,
    NotAnImage,
    PermanentError,
    UnsupportedImageFormat,
    make_thumbnail,
)

BOX = (128, 128)


def decode(thumbnail) -> Image.Image:
    image = Image.open(io.BytesIO(thumbnail.data))
    image.load()
    return image


@pytest.mark.parametrize("name", sorted(VALID_IMAGES))
def test_thumbnail_fits_box_keeps_aspect_and_never_upscales(name):
    thumbnail = make_thumbnail(image_bytes(name))
    source_width, source_height = display_size(name)

    assert 1 <= thumbnail.width <= BOX[0]
    assert 1 <= thumbnail.height <= BOX[1]
    assert thumbnail.width <= source_width
    assert thumbnail.height <= source_height
    # One side touches the box unless the source was already smaller than the box.
    scale = min(BOX[0] / source_width, BOX[1] / source_height, 1.0)
    assert thumbnail.width == pytest.approx(source_width * scale, abs=1)
    assert thumbnail.height == pytest.approx(source_height * scale, abs=1)


@pytest.mark.parametrize("name", sorted(VALID_IMAGES))
def test_output_format_and_content_type_describe_the_written_bytes(name):
    thumbnail = make_thumbnail(image_bytes(name))
    written = decode(thumbnail)

    assert thumbnail.format == VALID_IMAGES[name]
    assert written.format == thumbnail.format
    assert thumbnail.content_type == Image.MIME[written.format]
    assert written.size == (thumbnail.width, thumbnail.height)


@pytest.mark.parametrize("name", sorted(VALID_IMAGES))
def test_identical_input_gives_identical_bytes(name):
    assert make_thumbnail(image_bytes(name)).data == make_thumbnail(image_bytes(name)).data


def test_small_image_is_not_upscaled():
    thumbnail = make_thumbnail(image_bytes("small-100x50.jpg"))
    assert (thumbnail.width, thumbnail.height) == (100, 50)


@pytest.mark.parametrize(
    ("name", "size"),
    [("wide-2000x10.png", (128, 1)), ("tall-10x2000.png", (1, 128)), ("tiny-1x1.png", (1, 1))],
)
def test_extreme_aspect_ratios_keep_at_least_one_pixel(name, size):
    thumbnail = make_thumbnail(image_bytes(name))
    assert (thumbnail.width, thumbnail.height) == size


def test_custom_box_is_respected():
    thumbnail = make_thumbnail(image_bytes("jpeg-baseline.jpg"), max_size=(64, 32))
    assert thumbnail.width <= 64
    assert thumbnail.height == 32


def corner_colours(image: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Mean colour of the top-left and bottom-right eighths of an image."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    cw, ch = max(w // 8, 1), max(h // 8, 1)
    top_left = ImageStat.Stat(rgb.crop((0, 0, cw, ch))).mean
    bottom_right = ImageStat.Stat(rgb.crop((w - cw, h - ch, w, h))).mean
    return tuple(round(v) for v in top_left), tuple(round(v) for v in bottom_right)


def is_reddish(colour) -> bool:
    red, green, blue = colour
    return red > 150 and green < 100 and blue < 100


def is_bluish(colour) -> bool:
    red, green, blue = colour
    return blue > 150 and red < 100 and green < 100


@pytest.mark.parametrize(
    "name",
    [
        "jpeg-exif-orientation-3.jpg",
        "jpeg-exif-orientation-6.jpg",
        "jpeg-exif-orientation-8.jpg",
        # Pillow's TIFF loader applies the tag itself: applied again, the picture came out sideways.
        "tiff-exif-orientation-6.tiff",
    ],
)
def test_exif_orientation_is_applied_once_so_the_thumbnail_is_upright(name):
    # The fixture's upright picture has red in its top-left corner and blue in its bottom-right.
    thumbnail = make_thumbnail(image_bytes(name))
    top_left, bottom_right = corner_colours(decode(thumbnail))

    assert is_reddish(top_left), top_left
    assert is_bluish(bottom_right), bottom_right
    display_width, display_height = display_size(name)
    assert (thumbnail.width > thumbnail.height) == (display_width > display_height)


def test_rotated_thumbnail_carries_no_orientation_tag():
    written = decode(make_thumbnail(image_bytes("jpeg-exif-orientation-6.jpg")))
    assert written.getexif().get(0x0112) in (None, 1)


@pytest.mark.parametrize(
    "name", ["png-rgba.png", "png-palette-transparent.png", "webp-alpha.webp", "tiff-rgba.tiff"]
)
def test_transparency_survives(name):
    written = decode(make_thumbnail(image_bytes(name))).convert("RGBA")
    alpha_min, alpha_max = written.getchannel("A").getextrema()
    assert alpha_min == 0
    assert alpha_max == 255


def test_gif_transparency_survives():
    written = decode(make_thumbnail(image_bytes("gif-static.gif")))
    assert written.mode == "P"
    assert "transparency" in written.info
    assert written.convert("RGBA").getchannel("A").getextrema() == (0, 255)


def test_animated_gif_gives_a_still_of_the_first_frame():
    source = Image.open(io.BytesIO(image_bytes("gif-animated.gif")))
    assert source.n_frames > 1
    first_frame = source.convert("RGB").resize((128, 85), Image.Resampling.LANCZOS)

    written = decode(make_thumbnail(image_bytes("gif-animated.gif")))

    assert getattr(written, "n_frames", 1) == 1
    difference = ImageStat.Stat(ImageChops.difference(written.convert("RGB"), first_frame)).mean
    # GIF quantisation costs a few levels per channel; another frame would differ by far more.
    assert max(difference) < 12, difference


def test_palette_images_are_filtered_not_nearest_neighbour():
    # A 1-pixel black/white checkerboard averages to grey under a real filter; nearest
    # neighbour would keep only pure black and white pixels.
    board = Image.new("P", (256, 256))
    board.putpalette([0, 0, 0, 255, 255, 255])
    board.putdata([(x + y) % 2 for y in range(256) for x in range(256)])
    buffer = io.BytesIO()
    board.save(buffer, "PNG")

    written = decode(make_thumbnail(buffer.getvalue())).convert("L")

    low, high = written.getextrema()
    assert 100 < low <= high < 155


def test_16_bit_png_is_scaled_not_clipped():
    written = decode(make_thumbnail(image_bytes("png-16bit-gray.png")))
    assert written.mode == "L"
    low, high = written.getextrema()
    # Clipping to 8 bits would turn everything above 255/65535 white: a dark end must remain.
    assert low < 40
    assert high > 215
    assert 80 < ImageStat.Stat(written).mean[0] < 175


def test_cmyk_jpeg_becomes_rgb_jpeg():
    written = decode(make_thumbnail(image_bytes("jpeg-cmyk.jpg")))
    assert written.mode == "RGB"


def test_metadata_is_not_copied():
    written = decode(make_thumbnail(image_bytes("jpeg-exif-orientation-6.jpg")))
    assert "exif" not in written.info


@pytest.mark.parametrize(("name", "reason"), sorted(INVALID_IMAGES.items()))
def test_bad_input_raises_a_permanent_error_with_its_reason(name, reason):
    with pytest.raises(PermanentError) as raised:
        make_thumbnail(image_bytes(name))
    assert raised.value.reason == reason


def test_empty_bytes():
    with pytest.raises(EmptySource):
        make_thumbnail(b"")


def test_text_file_is_not_an_image():
    with pytest.raises(NotAnImage, match="not a recognisable image"):
        make_thumbnail(b"hello, this is not a JPEG\n")


def test_unsupported_format_names_the_format():
    with pytest.raises(UnsupportedImageFormat, match="PCX"):
        make_thumbnail(image_bytes("unsupported-format.pcx"))


def test_truncated_jpeg_is_corrupt():
    with pytest.raises(CorruptImage):
        make_thumbnail(image_bytes("corrupt-truncated.jpg"))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size in its header but carries one row of pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1)))
        + chunk(b"IEND", b"")
    )


def test_pixel_limit_is_enforced_from_the_header_before_decoding():
    # 8000x8000 = 64 MP is below Pillow's own bomb limit, so only our limit can reject it, and
    # the file holds one row, so a decode attempt would fail with CorruptImage instead.
    with pytest.raises(ImageTooLarge, match="8000x8000"):
        make_thumbnail(png_header_only(8000, 8000), max_pixels=50_000_000)


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageTooLarge):
        make_thumbnail(image_bytes("jpeg-baseline.jpg"), max_pixels=640 * 480 - 1)
    assert make_thumbnail(image_bytes("jpeg-baseline.jpg"), max_pixels=640 * 480).width == 128


def test_huge_declared_size_is_rejected_as_too_large():
    with pytest.raises(ImageTooLarge):
        make_thumbnail(png_header_only(30000, 30000))


def test_jpeg_quality_changes_the_output():
    source = image_bytes("jpeg-baseline.jpg")
    assert len(make_thumbnail(source, jpeg_quality=30).data) < len(make_thumbnail(source).data)


def opaque_colours(image: Image.Image, min_alpha: int = 1) -> list[tuple[int, int, int]]:
    """The RGB colour of every pixel at least `min_alpha` opaque."""
    rgba = image.convert("RGBA")
    return [pixel[:3] for pixel in rgba.get_flattened_data() if pixel[3] >= min_alpha]


def is_magenta_tinted(colour) -> bool:
    red, green, blue = colour
    return red - green > 60 and blue - green > 60


def test_colour_key_becomes_transparency_without_a_fringe():
    # A tRNS colour key on an RGB PNG: the magenta key must become transparent before filtering;
    # blended by the resize, it showed as a magenta fringe (and the key itself as a magenta block).
    written = decode(make_thumbnail(image_bytes("png-rgb-colour-key.png")))

    assert written.mode == "RGBA"
    assert written.getchannel("A").getextrema() == (0, 255)
    assert not [c for c in opaque_colours(written) if is_magenta_tinted(c)]


def keyed_source(mode: str, key: int, size=(400, 300)) -> bytes:
    """A `mode` PNG whose background is the tRNS key `key` around an opaque mid-grey disc."""
    grey = {"1": 1, "L": 128, "I;16": 32896}[mode]
    image = Image.new("I" if mode == "I;16" else mode, size, key)
    ImageDraw.Draw(image).ellipse((50, 50, 350, 250), fill=grey)
    if mode == "I;16":
        image = image.convert("I;16")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=key)
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "key"), [("L", 255), ("1", 0), ("I;16", 65535)])
def test_colour_key_of_greyscale_1_bit_and_16_bit_pngs_becomes_transparency(mode, key):
    source = keyed_source(mode, key)
    with Image.open(io.BytesIO(source)) as opened:
        assert (opened.mode, opened.info["transparency"]) == (mode, key)  # the case under test

    written = decode(make_thumbnail(source))

    assert written.mode == "LA"
    assert written.getchannel("A").getextrema() == (0, 255)
    # Visible pixels keep the disc's grey (white for 1-bit) up to Lanczos ringing at the edge,
    # which measures up to 13 levels; blended with the key, a half-covered edge pixel is halfway
    # to the key's level (about 60 levels away).
    visible = {colour[0] for colour in opaque_colours(written, min_alpha=64)}
    expected = {"1": 255, "L": 128, "I;16": 128}[mode]
    assert max(abs(level - expected) for level in visible) <= 20, sorted(visible)


def test_unrecognised_bytes_never_reach_a_decoder(monkeypatch):
    opened = []
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(kwargs) or pytest.fail("opened"))

    for data in (b"8BPS\x00\x01" + bytes(64), image_bytes("unsupported-format.pcx"), b"plain text, no image"):
        with pytest.raises((UnsupportedImageFormat, NotAnImage)):
            make_thumbnail(data)

    assert opened == []


def test_an_accepted_signature_is_parsed_by_that_format_s_decoder_alone(monkeypatch):
    real_open = Image.open
    formats_asked = []

    def spy(fp, mode="r", formats=None):
        formats_asked.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", spy)
    make_thumbnail(image_bytes("png-rgb.png"))
    make_thumbnail(image_bytes("heic-hopper.heif"))

    assert formats_asked == [("PNG",), ("HEIF",)]


def test_psd_is_named_from_its_signature():
    with pytest.raises(UnsupportedImageFormat, match="PSD images are not accepted"):
        make_thumbnail(b"8BPS\x00\x01" + bytes(64))


@pytest.mark.parametrize(("width", "accepted"), [(65_535, True), (65_536, False)])
def test_longest_side_limit(width, accepted):
    row = b"\x00" + b"\xff" * width
    png = png_header_only(width, 1)[:33] + png_chunk(b"IDAT", zlib.compress(row)) + png_chunk(b"IEND", b"")
    if accepted:
        assert (make_thumbnail(png).width, make_thumbnail(png).height) == (128, 1)
    else:
        with pytest.raises(ImageTooLarge, match="a side longer than 65535 pixels"):
            make_thumbnail(png)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def with_empty_scans(scans: int) -> bytes:
    """A 64x64 progressive JPEG followed by extra AC scans of its luma that carry nothing."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    eob_table = b"\xff\xc4\x00\x14\x10\x01" + bytes(15) + b"\x00"  # code '0' = end of band
    empty_scan = b"\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x00" + b"\x00" * 8  # 64 blocks, one bit each
    existing = data.count(b"\xff\xda")
    return data[:-2] + eob_table + empty_scan * (scans - existing) + b"\xff\xd9"


def test_jpeg_scan_limit():
    assert make_thumbnail(with_empty_scans(256)).width == 64
    with pytest.raises(ImageTooComplex, match="257 scans, more than the limit of 256"):
        make_thumbnail(with_empty_scans(257))


def test_padding_between_scans_cannot_hide_them_from_the_count():
    # libjpeg skips stray bytes up to the next marker ("extraneous bytes" warning), so must the count.
    data = with_empty_scans(300).replace(b"\xff\xda", b"junk\xff\xda")
    with pytest.raises(ImageTooComplex):
        make_thumbnail(data)


@pytest.mark.parametrize(
    ("name", "output", "mode"),
    [
        ("heic-hopper.heif", "JPEG", "RGB"),
        ("heic-grey-exif-xmp-iptc.heic", "JPEG", "L"),
        ("heic-rgba-29x100.heif", "PNG", "RGBA"),
        ("avif-orientation-5.avif", "JPEG", "RGB"),
        ("avif-transparent.avif", "PNG", "RGBA"),
    ],
)
def test_heif_and_avif_become_jpeg_or_with_alpha_png(name, output, mode):
    thumbnail = make_thumbnail(image_bytes(name))
    written = decode(thumbnail)

    assert thumbnail.source_format == {"heic": "HEIF", "avif": "AVIF"}[name[:4]]
    assert (written.format, written.mode) == (output, mode)


PACKAGE_DIR = Path(thumbnailer.__file__).parent
IMAGE_CORE = [PACKAGE_DIR / name for name in ("core.py", "formats.py", "colour.py")]
IMAGE_CORE += sorted((PACKAGE_DIR / "decoders").glob("*.py"))
# The image core is a function from bytes to a thumbnail: no AWS, no environment, no settings.
FORBIDDEN_IN_CORE = {"boto3", "botocore", "os", "thumbnailer.storage", "thumbnailer.settings"}


def _imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", IMAGE_CORE, ids=lambda path: path.relative_to(PACKAGE_DIR).as_posix())
def test_the_image_core_imports_neither_aws_nor_the_environment(path):
    imported = _imported_modules(path.read_text())

    assert not {m for m in imported if m in FORBIDDEN_IN_CORE or m.split(".")[0] in FORBIDDEN_IN_CORE}
