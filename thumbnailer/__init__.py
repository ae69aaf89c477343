"""Image thumbnails for S3 uploads: a pure core plus thin S3 and settings modules.

`make_thumbnail` and `Thumbnail` load the core (and with it Pillow) on first use, so that the
light modules (`thumbnailer.logs`, `thumbnailer.settings`, `thumbnailer.events`) import without it.
"""

from thumbnailer.errors import (
    CorruptImage,
    EmptySource,
    ImageTooComplex,
    ImageTooLarge,
    NotAnImage,
    PermanentError,
    RecordsFailed,
    SourceTooLarge,
    ThumbnailerError,
    UnsupportedImageFormat,
)

_FROM_CORE = ("Thumbnail", "make_thumbnail")

__all__ = [
    "CorruptImage",
    "EmptySource",
    "ImageTooComplex",
    "ImageTooLarge",
    "NotAnImage",
    "PermanentError",
    "RecordsFailed",
    "SourceTooLarge",
    "Thumbnail",
    "ThumbnailerError",
    "UnsupportedImageFormat",
    "make_thumbnail",
]


def __getattr__(name: str):
    if name not in _FROM_CORE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from thumbnailer import core

    value = getattr(core, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
