"""Parsing of S3 event notifications into the objects they name, and what cannot be used."""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

EXPECTED_SHAPE = (
    "an S3 event notification: {'Records': [{'eventSource': 'aws:s3', "
    "'s3': {'bucket': {'name': ...}, 'object': {'key': ...}}}]}"
)

CREATED_PREFIX = "ObjectCreated:"
# Deletes and delete markers, and what lifecycle rules expire (Delete, DeleteMarkerCreated).
REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


@dataclass(frozen=True)
class S3ObjectRef:
    """One object named by an event record; `key` is already URL-decoded.

    `sequencer` is S3's per-key ordering token (hex); it is kept for log lines and replays,
    nothing orders on it here (the pipeline re-reads the source instead, see pipeline.py).
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
        """An `ObjectRemoved:*` or `LifecycleExpiration:*` record (the object, or its version, is gone)."""
        return self.event_name.startswith(REMOVED_PREFIXES)


@dataclass(frozen=True)
class Malformed:
    """An event, or one of its records, that is not usable: where, which field, and why."""

    where: str  # "event", or "Records[<index>]"
    field: str  # the missing or invalid field, e.g. "Records" or "s3.object.key"
    message: str


@dataclass(frozen=True)
class ParsedEvent:
    """The usable records of an event, and a description of each unusable one."""

    objects: tuple[S3ObjectRef, ...]
    malformed: tuple[Malformed, ...] = ()
    is_test_event: bool = False


def parse_event(event: object) -> ParsedEvent:
    """Extract the S3 objects an event names; never raises.

    An event that is not an S3 notification at all, and each record that lacks a field, is
    described in `malformed`; the other records are still returned. The `s3:TestEvent` that S3
    sends when a notification is configured yields no objects.
    """
    if not isinstance(event, Mapping):
        message = f"expected {EXPECTED_SHAPE}; got a {type(event).__name__}"
        return ParsedEvent(objects=(), malformed=(Malformed("event", "Records", message),))
    if event.get("Event") == "s3:TestEvent":
        return ParsedEvent(objects=(), is_test_event=True)
    records = event.get("Records")
    if not isinstance(records, list):
        found = ", ".join(sorted(map(str, event))) or "nothing"
        message = f"the event has no 'Records' list (it has: {found}); expected {EXPECTED_SHAPE}"
        return ParsedEvent(objects=(), malformed=(Malformed("event", "Records", message),))
    objects, malformed = [], []
    for index, record in enumerate(records):
        parsed = _parse_record(record, f"Records[{index}]")
        (objects if isinstance(parsed, S3ObjectRef) else malformed).append(parsed)
    return ParsedEvent(objects=tuple(objects), malformed=tuple(malformed))


def _parse_record(record: object, where: str) -> "S3ObjectRef | Malformed":
    bucket = _field(record, ("s3", "bucket", "name"))
    raw_key = _field(record, ("s3", "object", "key"))
    for value in (bucket, raw_key):
        if isinstance(value, tuple):
            field, message = value
            return Malformed(where, field, f"{where}: {message}; expected {EXPECTED_SHAPE}")
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


def _field(record: object, path: tuple[str, ...]) -> "str | tuple[str, str]":
    """The non-empty string at `path`, or (the field's dotted name, what is wrong with it)."""
    value = record
    for depth, name in enumerate(path):
        if not isinstance(value, Mapping) or name not in value:
            where = ".".join(path[: depth + 1])
            return where, f"missing field {where}"
        value = value[name]
    if not isinstance(value, str) or not value:
        dotted = ".".join(path)
        return dotted, f"field {dotted} must be a non-empty string, got {value!r}"
    return value
