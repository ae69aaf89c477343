"""Every setting of the function, read once from the environment at cold start.

The names below are the whole configuration surface; `serverless.yml` sets them and the README
documents them. LocalStack differs from AWS only by AWS_ENDPOINT_URL, which boto3 reads itself.
"""

from collections.abc import Mapping
from dataclasses import dataclass

THUMBNAIL_MAX_WIDTH = "THUMBNAIL_MAX_WIDTH"
THUMBNAIL_MAX_HEIGHT = "THUMBNAIL_MAX_HEIGHT"
THUMBNAIL_PREFIX = "THUMBNAIL_PREFIX"
THUMBNAIL_BUCKET = "THUMBNAIL_BUCKET"
MAX_SOURCE_BYTES = "MAX_SOURCE_BYTES"
MAX_SOURCE_PIXELS = "MAX_SOURCE_PIXELS"
THUMBNAIL_JPEG_QUALITY = "THUMBNAIL_JPEG_QUALITY"
LOG_LEVEL = "LOG_LEVEL"

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Pillow refuses to decode more pixels than twice its MAX_IMAGE_PIXELS (DecompressionBombError),
# whatever MAX_SOURCE_PIXELS says; a larger setting would promise what the decoder never does.
DECODER_MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)


class SettingsError(ValueError):
    """An environment variable holds a value the function cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Validated configuration; the defaults reproduce the original guide's behaviour."""

    max_width: int = 128
    max_height: int = 128
    prefix: str = "thumbnails/"
    bucket: str | None = None
    max_source_bytes: int = 50 * 1024 * 1024
    max_source_pixels: int = 50_000_000
    jpeg_quality: int = 85
    log_level: str = "INFO"

    @property
    def max_size(self) -> tuple[int, int]:
        """The bounding box a thumbnail must fit in, as (width, height)."""
        return (self.max_width, self.max_height)

    def destination_bucket(self, source_bucket: str) -> str:
        """Where the thumbnail of an object in `source_bucket` is written."""
        return self.bucket or source_bucket

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        """Build settings from an environment mapping; raise SettingsError naming the bad variable."""
        defaults = cls()
        prefix = environ.get(THUMBNAIL_PREFIX, defaults.prefix)
        if not prefix.endswith("/") or prefix.startswith("/"):
            raise SettingsError(
                f"{THUMBNAIL_PREFIX} must name a folder and end with '/', such as 'thumbnails/', got "
                f"{prefix!r}: without the '/', 'thumbs' would also claim the upload 'thumbsup.jpg' (and "
                "skip it forever as a thumbnail), and an empty prefix would make every thumbnail trigger "
                "the function again"
            )
        log_level = environ.get(LOG_LEVEL, defaults.log_level).upper()
        if log_level not in _LOG_LEVELS:
            raise SettingsError(f"{LOG_LEVEL} must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
        return cls(
            max_width=_int(environ, THUMBNAIL_MAX_WIDTH, defaults.max_width, 1, 4096),
            max_height=_int(environ, THUMBNAIL_MAX_HEIGHT, defaults.max_height, 1, 4096),
            prefix=prefix,
            bucket=environ.get(THUMBNAIL_BUCKET) or None,
            max_source_bytes=_int(environ, MAX_SOURCE_BYTES, defaults.max_source_bytes, 1, 10**10),
            max_source_pixels=_int(
                environ, MAX_SOURCE_PIXELS, defaults.max_source_pixels, 1, DECODER_MAX_PIXELS
            ),
            jpeg_quality=_int(environ, THUMBNAIL_JPEG_QUALITY, defaults.jpeg_quality, 1, 95),
            log_level=log_level,
        )


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value
