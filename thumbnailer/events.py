"""Parsing of the events that name S3 objects, and of what cannot be used.

Three shapes reach the function: S3 event notifications (`Records`, keys URL-encoded), S3 events
delivered by EventBridge (`source` aws.s3, one object in `detail`, keys as they are in LocalStack;
AWS documents no encoding, so the URL-decoded spelling is kept too), and S3 Batch
Operations tasks (`invocationSchemaVersion`, `tasks`, keys URL-encoded), whose caller expects a
result per task.
"""

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
    # EventBridge only: the key URL-decoded, when that differs (the pipeline uses the one that exists).
    decoded_key: str | None = None

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
class BatchTask:
    """One task of an S3 Batch Operations invocation: its id, and its object (or what is wrong)."""

    task_id: str
    target: "S3ObjectRef | Malformed"


@dataclass(frozen=True)
class BatchInvocation:
    """An S3 Batch Operations invocation: the ids its response must echo, and its tasks."""

    invocation_id: str
    schema_version: str
    tasks: tuple[BatchTask, ...]


@dataclass(frozen=True)
class ParsedEvent:
    """The usable records of an event, and a description of each unusable one."""

    objects: tuple[S3ObjectRef, ...]
    malformed: tuple[Malformed, ...] = ()
    is_test_event: bool = False
    batch: BatchInvocation | None = None


# EventBridge's S3 detail types and reasons, as S3 notification event names.
_EVENTBRIDGE_KINDS = {"Object Created": "ObjectCreated", "Object Deleted": "ObjectRemoved"}
_LIFECYCLE_REASON = "Lifecycle Expiration"
BATCH_EVENT_NAME = "ObjectCreated:BatchOperation"


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
    if event.get("source") == "aws.s3" and "detail" in event:
        parsed = _parse_eventbridge(event)
        return (
            ParsedEvent(objects=(parsed,)) if isinstance(parsed, S3ObjectRef) else ParsedEvent((), (parsed,))
        )
    if "invocationSchemaVersion" in event and "tasks" in event:
        return _parse_batch(event)
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


def _parse_eventbridge(event: Mapping) -> "S3ObjectRef | Malformed":
    """An S3 event as EventBridge delivers it: one object; its key as given, and URL-decoded."""
    bucket = _field(event, ("detail", "bucket", "name"))
    key = _field(event, ("detail", "object", "key"))
    for value in (bucket, key):
        if isinstance(value, tuple):
            field, message = value
            return Malformed("event", field, f"EventBridge event: {message}")
    detail = event["detail"]
    reason = str(detail.get("reason", ""))
    kind = _EVENTBRIDGE_KINDS.get(str(event.get("detail-type")), f"EventBridge:{event.get('detail-type')}")
    if kind == "ObjectRemoved" and reason == _LIFECYCLE_REASON:
        event_name = "LifecycleExpiration:Delete"
    else:
        event_name = f"{kind}:{reason or 'unknown'}"  # ObjectCreated:PutObject, ObjectRemoved:DeleteObject
    size = detail["object"].get("size")
    sequencer = detail["object"].get("sequencer")
    decoded = unquote_plus(key)
    return S3ObjectRef(
        bucket=bucket,
        key=key,
        event_name=event_name,
        size=size if isinstance(size, int) else None,
        sequencer=sequencer if isinstance(sequencer, str) else None,
        decoded_key=decoded if decoded != key else None,
    )


def _parse_batch(event: Mapping) -> ParsedEvent:
    """S3 Batch Operations tasks (schema 1.0: s3BucketArn; 2.0: s3Bucket); keys URL-encoded as in
    the manifest (form encoding, as S3 Inventory writes them and ops/backfill's manifest does)."""
    tasks = []
    for index, task in enumerate(event.get("tasks") or []):
        task_id = str(task.get("taskId", "")) if isinstance(task, Mapping) else ""
        where = f"tasks[{index}]"
        key = _field(task, ("s3Key",))
        bucket = _field(task, ("s3Bucket",)) if isinstance(task, Mapping) and "s3Bucket" in task else None
        if bucket is None:
            arn = _field(task, ("s3BucketArn",))
            bucket = arn.rsplit(":", 1)[-1] if isinstance(arn, str) else arn
        problem = next((value for value in (key, bucket) if isinstance(value, tuple)), None)
        if problem is not None:
            field, message = problem
            tasks.append(BatchTask(task_id, Malformed(where, field, f"{where}: {message}")))
            continue
        tasks.append(
            BatchTask(task_id, S3ObjectRef(bucket=bucket, key=unquote_plus(key), event_name=BATCH_EVENT_NAME))
        )
    invocation = BatchInvocation(
        invocation_id=str(event.get("invocationId", "")),
        schema_version=str(event.get("invocationSchemaVersion")),
        tasks=tuple(tasks),
    )
    return ParsedEvent(objects=(), batch=invocation)


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
