"""Settings: defaults reproduce the guide; bad values fail at cold start naming the variable."""

import pytest
from PIL import Image

from thumbnailer.settings import DECODER_MAX_PIXELS, Settings, SettingsError


def test_defaults_reproduce_the_guide():
    settings = Settings.from_env({})
    assert settings.max_size == (128, 128)
    assert settings.prefix == "thumbnails/"
    assert settings.destination_bucket("uploads") == "uploads"


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "THUMBNAIL_MAX_WIDTH": "200",
            "THUMBNAIL_MAX_HEIGHT": "100",
            "THUMBNAIL_PREFIX": "thumbs/",
            "THUMBNAIL_BUCKET": "other-bucket",
            "MAX_SOURCE_BYTES": "1000",
            "MAX_SOURCE_PIXELS": "2000",
            "THUMBNAIL_JPEG_QUALITY": "70",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings == Settings(
        max_width=200,
        max_height=100,
        prefix="thumbs/",
        bucket="other-bucket",
        max_source_bytes=1000,
        max_source_pixels=2000,
        jpeg_quality=70,
        log_level="DEBUG",
    )
    assert settings.destination_bucket("uploads") == "other-bucket"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("THUMBNAIL_MAX_WIDTH", "wide", "THUMBNAIL_MAX_WIDTH must be an integer, got 'wide'"),
        ("THUMBNAIL_MAX_HEIGHT", "0", "THUMBNAIL_MAX_HEIGHT must be between 1 and 4096, got 0"),
        ("THUMBNAIL_JPEG_QUALITY", "100", "THUMBNAIL_JPEG_QUALITY must be between 1 and 95"),
        ("MAX_SOURCE_BYTES", "-5", "MAX_SOURCE_BYTES must be between"),
        ("THUMBNAIL_PREFIX", "/", "THUMBNAIL_PREFIX must name a folder"),
        ("THUMBNAIL_PREFIX", "", "THUMBNAIL_PREFIX must name a folder"),
        # Without the '/', the upload 'thumbsup.jpg' would count as a thumbnail and be skipped forever.
        ("THUMBNAIL_PREFIX", "thumbs", "THUMBNAIL_PREFIX must name a folder and end with '/'"),
        ("THUMBNAIL_PREFIX", "/thumbs/", "THUMBNAIL_PREFIX must name a folder"),
        # Pillow refuses to decode more, whatever the setting says.
        ("MAX_SOURCE_PIXELS", "178956971", "MAX_SOURCE_PIXELS must be between 1 and 178956970"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
    ],
)
def test_invalid_values_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_the_pixel_ceiling_is_pillow_s():
    assert DECODER_MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS
    assert (
        Settings.from_env({"MAX_SOURCE_PIXELS": str(DECODER_MAX_PIXELS)}).max_source_pixels
        == DECODER_MAX_PIXELS
    )
