"""Error types, split by what a retry can do about them.

`PermanentError` means the input itself is bad: retrying cannot help, so the handler logs the
record and moves on. Every other exception is treated as transient and re-raised (after the
other records of the event are done) so that Lambda's asynchronous retry runs. Malformed events
are neither: they are logged and dropped (see pipeline.py).
"""


class ThumbnailerError(Exception):
    """Base class of every error this package raises on purpose."""


class PermanentError(ThumbnailerError):
    """The source object can never produce a thumbnail; logged and skipped, never retried."""

    reason = "permanent"


class EmptySource(PermanentError):
    """The object has zero bytes."""

    reason = "empty"


class SourceTooLarge(PermanentError):
    """The object is larger than MAX_SOURCE_BYTES."""

    reason = "too_many_bytes"


class NotAnImage(PermanentError):
    """No image decoder recognises the bytes."""

    reason = "not_an_image"


class UnsupportedImageFormat(PermanentError):
    """A recognisable image, but in a format the service does not accept."""

    reason = "unsupported_format"


class ImageTooLarge(PermanentError):
    """The header declares more pixels than MAX_SOURCE_PIXELS, or a side over 65,535 pixels."""

    reason = "too_many_pixels"


class ImageTooComplex(PermanentError):
    """Within the pixel limit, but built to cost far more to decode (a JPEG "scan bomb")."""

    reason = "too_complex"


class CorruptImage(PermanentError):
    """The header was readable but the pixel data is truncated or damaged."""

    reason = "corrupt"


class KeyTooLong(PermanentError):
    """The thumbnail's key would pass S3's limit of 1,024 bytes (UTF-8)."""

    reason = "key_too_long"


class PermanentS3Error(PermanentError):
    """S3 refused a request for what it is (a key too long, an invalid argument): no retry helps."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class DeadlineExceeded(ThumbnailerError):
    """Too little of the invocation's time is left for the next S3 call (transient: retried)."""


class SourceKeptChanging(ThumbnailerError):
    """The source changed during every round of work on it (transient: retried)."""


class RecordsFailed(ThumbnailerError):
    """One or more records hit a transient failure; raised after all records were tried."""
