"""Image thumbnails for S3 uploads: a pure core plus thin S3 and settings modules."""

from thumbnailer.core import Thumbnail, make_thumbnail
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
