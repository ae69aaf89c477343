"""Parsing of S3 event notifications into the objects they name."""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from thumbnailer.errors import MalformedEvent

EXPECTED_SHAPE = (
    "an S3 event notification: {'Records': [{'eventSource': 'aws:s3', "
    "'s3': {'bucket': {'name': ...}, 'object': {'key': ...}}}]}"
)


CREATED_PREFIX = "ObjectCreated:"
REMOVED_PREFIX = "ObjectRemoved:"


@dataclass(frozen=True)
class S3ObjectRef:
    """One object named by an event record; `key` is already URL-decoded.

    `sequencer` is S3's per-key ordering token (hex; compare equal-length values after
    left-padding); it is kept for log lines and replays, nothing orders on it here.
    """

    bucket: str
    key: str
    event_name: str
    size: int | None = None
    sequencer: str | None = None

    @property
    def is_creation(self) -> bool:
        """An `ObjectCreated:*` record (Put, Post, Copy, CompleteMultipartUpload, ...)."""
        return self.event_name.startswith(CREATED_PREFIX)

    @property
    def is_removal(self) -> bool:
        """An `ObjectRemoved:*` record (Delete, DeleteMarkerCreated)."""
        return self.event_name.startswith(REMOVED_PREFIX)


@dataclass(frozen=True)
class ParsedEvent:
    """The usable records of an event, and a description of each unusable one."""

    objects: tuple[S3ObjectRef, ...]
    malformed: tuple[str, ...] = ()
    is_test_event: bool = False


def parse_event(event: object) -> ParsedEvent:
    """Extract the S3 objects an event names.

    Raises MalformedEvent when the event as a whole is not an S3 notification. A record that
    lacks a field is reported in `malformed` so the caller can still process the others.
    The `s3:TestEvent` that S3 sends when a notification is configured yields no objects.
    """
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"expected {EXPECTED_SHAPE}; got a {type(event).__name__}")
    if event.get("Event") == "s3:TestEvent":
        return ParsedEvent(objects=(), is_test_event=True)
    records = event.get("Records")
    if not isinstance(records, list):
        found = ", ".join(sorted(map(str, event))) or "nothing"
        raise MalformedEvent(f"the event has no 'Records' list (it has: {found}); expected {EXPECTED_SHAPE}")
    objects, malformed = [], []
    for index, record in enumerate(records):
        try:
            objects.append(_parse_record(record))
        except MalformedEvent as exc:
            malformed.append(f"Records[{index}]: {exc}")
    return ParsedEvent(objects=tuple(objects), malformed=tuple(malformed))


def _parse_record(record: object) -> S3ObjectRef:
    bucket = _field(record, ("s3", "bucket", "name"))
    raw_key = _field(record, ("s3", "object", "key"))
    size = record["s3"]["object"].get("size")
    sequencer = record["s3"]["object"].get("sequencer")
    return S3ObjectRef(
        bucket=bucket,
        # S3 URL-encodes keys in notifications, with spaces as '+'.
        key=unquote_plus(raw_key),
        event_name=str(record.get("eventName", "")),
        size=size if isinstance(size, int) else None,
        sequencer=sequencer if isinstance(sequencer, str) else None,
    )


def _field(record: object, path: tuple[str, ...]) -> str:
    value = record
    for depth, name in enumerate(path):
        if not isinstance(value, Mapping) or name not in value:
            where = ".".join(path[: depth + 1])
            raise MalformedEvent(f"missing field {where}; expected {EXPECTED_SHAPE}")
        value = value[name]
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"field {'.'.join(path)} must be a non-empty string, got {value!r}")
    return value
