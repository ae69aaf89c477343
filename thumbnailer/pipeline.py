"""What happens to one Lambda event: every record tried, outcomes logged, failures sorted.

Creations and removals both make the thumbnail match the source as it is *now*: a thumbnail of
its current version, or none when it is gone or rejected. Lambda runs invocations for one key
concurrently and in any order, so the event only says which key to look at, and each write is
followed by a re-read of the source's ETag: if the source changed meanwhile, the work is done
again on the new version (`reconcile`). Whichever invocation writes last has then seen the
final source, so no interleaving leaves an orphan, a missing or a stale thumbnail.

Permanent problems (bad image, key too long) are logged and skipped. A malformed event or record
is logged and dropped: it is the same on every retry. Any other exception is transient: the
remaining records still run, then RecordsFailed is raised so that Lambda retries the event.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Protocol

from thumbnailer.core import Thumbnail, make_thumbnail
from thumbnailer.errors import (
    KeyTooLong,
    PermanentError,
    RecordsFailed,
    SourceKeptChanging,
    SourceTooLarge,
)
from thumbnailer.events import BATCH_EVENT_NAME, BatchInvocation, Malformed, S3ObjectRef, parse_event
from thumbnailer.logs import log
from thumbnailer.settings import Settings

# S3's limit on a key's length, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
# Rounds of work on a source that keeps changing before the record is left to Lambda's retry.
MAX_ROUNDS = 3


class SourceObject(Protocol):
    etag: str
    size: int
    data: bytes | None


class Storage(Protocol):
    """What the pipeline needs from object storage (S3Storage.within(deadline), or a stub in tests)."""

    def fetch(self, bucket: str, key: str, max_bytes: int) -> SourceObject | None: ...

    def etag(self, bucket: str, key: str) -> str | None: ...

    def made_from(self, bucket: str, key: str) -> str | None: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def store(self, bucket: str, key: str, thumbnail: Thumbnail, source_etag: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one object; `name` is the `outcome` field of its log line."""

    name: str
    message: str = ""
    reason: str | None = None


# S3 Batch Operations result codes per outcome; a transient failure is a TemporaryFailure (the job
# retries the task), anything that left no thumbnail for good a PermanentFailure (the completion
# report then lists the object and why).
BATCH_RESULT_CODES = {
    "created": "Succeeded",
    "up_to_date": "Succeeded",
    "kept_source_exists": "Succeeded",
    "skipped_recursion": "Succeeded",
    "rejected": "PermanentFailure",
    "skipped_missing": "PermanentFailure",
}


def handle_event(
    event: object,
    storage: Storage,
    settings: Settings,
    logger: logging.Logger,
    request_id: str | None = None,
) -> dict:
    """Process every object an S3 event names and return counts per outcome."""
    parsed = parse_event(event)
    if parsed.batch is not None:
        return handle_batch(parsed.batch, storage, settings, logger, request_id)
    if parsed.is_test_event:
        log(logger, logging.INFO, "ignored s3:TestEvent", outcome="ignored_test_event", request_id=request_id)
        return {"records": 0, "outcomes": {}}

    outcomes: Counter[str] = Counter()
    for problem in parsed.malformed:
        outcomes["malformed"] += 1
        log_malformed(logger, problem, request_id)
    failures: list[tuple[S3ObjectRef, Exception]] = []
    for ref in parsed.objects:
        try:
            outcomes[process_object(ref, storage, settings, logger, request_id).name] += 1
        except Exception as exc:  # transient: keep going, re-raise once all records are done
            outcomes["failed"] += 1
            failures.append((ref, exc))

    if failures:
        summary = "; ".join(f"s3://{r.bucket}/{r.key}: {type(e).__name__}: {e}" for r, e in failures)
        raise RecordsFailed(
            f"{len(failures)} of {len(parsed.objects)} records failed and will be retried: {summary}"
        ) from failures[0][1]
    return {"records": len(parsed.objects) + len(parsed.malformed), "outcomes": dict(outcomes)}


def handle_batch(
    batch: BatchInvocation,
    storage: Storage,
    settings: Settings,
    logger: logging.Logger,
    request_id: str | None = None,
) -> dict:
    """Process the tasks of an S3 Batch Operations invocation; answer with a result per task.

    Never raises: the job needs every task's result (a raised error would fail all of them).
    """
    results = []
    for task in batch.tasks:
        if isinstance(task.target, Malformed):
            log_malformed(logger, task.target, request_id)
            code, text = "PermanentFailure", f"malformed task: {task.target.message}"
        else:
            try:
                outcome = process_object(task.target, storage, settings, logger, request_id)
            except Exception as exc:  # transient, logged by process_object: the job retries the task
                code, text = "TemporaryFailure", f"{type(exc).__name__}: {exc}"
            else:
                code = BATCH_RESULT_CODES.get(outcome.name, "PermanentFailure")
                reason = f"{outcome.reason}: " if outcome.reason else ""
                text = f"{outcome.name}: {reason}{outcome.message}"
        results.append({"taskId": task.task_id, "resultCode": code, "resultString": text[:1024]})
    return {
        "invocationSchemaVersion": batch.schema_version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": batch.invocation_id,
        "results": results,
    }


def log_malformed(logger: logging.Logger, problem: Malformed, request_id: str | None) -> None:
    """One ERROR line for a malformed event or record: where, which field, why; never retried."""
    log(
        logger,
        logging.ERROR,
        f"malformed, dropped (a retry would get the same event): {problem.message}",
        outcome="malformed",
        reason="malformed_event",
        where=problem.where,
        field=problem.field,
        request_id=request_id,
    )


def process_object(
    ref: S3ObjectRef,
    storage: Storage,
    settings: Settings,
    logger: logging.Logger,
    request_id: str | None = None,
) -> Outcome:
    """Act on one record, logging one JSON line with the outcome.

    Keys under the thumbnail prefix are skipped (the recursion guard), records that neither
    create nor remove are ignored; for the others the thumbnail is made to match the source.
    A Batch Operations task whose thumbnail was made from the source as it is now is left alone
    (two HEADs instead of a GET, a decode and a PUT: a backfill job names every object).
    """
    started = time.perf_counter()
    fields: dict[str, object] = {
        "bucket": ref.bucket,
        "key": ref.key,
        "event_name": ref.event_name,
        "request_id": request_id,
    }

    requests_before = getattr(storage, "requests", 0)

    def finish(level: int, message: str, outcome: Outcome, **extra: object) -> Outcome:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        s3_requests = getattr(storage, "requests", 0) - requests_before
        log(
            logger,
            level,
            message,
            **fields,
            outcome=outcome.name,
            duration_ms=duration_ms,
            s3_requests=s3_requests,
            **extra,
        )
        return Outcome(outcome.name, message, extra.get("reason"))

    if not (ref.is_creation or ref.is_removal):
        return finish(logging.INFO, "ignored: neither a creation nor a removal", Outcome("ignored_event"))
    if ref.key.startswith(settings.prefix):
        return finish(
            logging.INFO,
            f"skipped: key is under the thumbnail prefix {settings.prefix!r} (recursion guard)",
            Outcome("skipped_recursion"),
        )
    destination = settings.destination_bucket(ref.bucket)
    try:
        if ref.decoded_key is not None:
            ref = _spelling_that_exists(ref, storage, destination, settings.prefix)
            fields["key"] = ref.key
        thumbnail_key = settings.prefix + ref.key
        fields.update(thumbnail_bucket=destination, thumbnail_key=thumbnail_key)
        if len(thumbnail_key.encode()) > MAX_KEY_BYTES:
            raise KeyTooLong(
                f"the thumbnail key would be {len(thumbnail_key.encode())} bytes, more than S3's "
                f"{MAX_KEY_BYTES}; shorten the source key or THUMBNAIL_PREFIX"
            )
        if ref.event_name == BATCH_EVENT_NAME and _up_to_date(ref, storage, destination, thumbnail_key):
            return finish(
                logging.INFO,
                "up to date: the thumbnail was made from the source as it is",
                Outcome("up_to_date"),
            )
        result = reconcile(ref, storage, settings, destination, thumbnail_key, logger, fields)
    except PermanentError as exc:
        return finish(
            logging.ERROR,
            f"rejected: {exc}",
            Outcome("rejected"),
            reason=exc.reason,
            error=type(exc).__name__,
        )
    except Exception as exc:  # transient: logged once here, raised for Lambda's retry
        finish(logging.ERROR, f"failed, will be retried: {exc}", Outcome("failed"), error=type(exc).__name__)
        raise
    return finish(result.level, result.message, Outcome(result.outcome), **result.fields)


@dataclass(frozen=True)
class Result:
    """How `reconcile` left the thumbnail, for the record's log line."""

    outcome: str
    level: int
    message: str
    fields: dict


def reconcile(
    ref: S3ObjectRef,
    storage: Storage,
    settings: Settings,
    destination: str,
    thumbnail_key: str,
    logger: logging.Logger,
    fields: dict,
) -> Result:
    """Make the thumbnail match the source as it is now, whatever the event said happened.

    Each round reads the source, then writes its thumbnail or deletes a thumbnail that must not
    be there, then re-reads the source's ETag: if the source changed or vanished in between,
    another round follows. Costs one HEAD per record over the GET and the PUT or DELETE.
    """
    for _ in range(MAX_ROUNDS):
        source = storage.fetch(ref.bucket, ref.key, settings.max_source_bytes)
        if source is None:
            storage.delete(destination, thumbnail_key)
            if storage.etag(ref.bucket, ref.key) is None:
                return _gone(ref)
            continue
        fields["source_bytes"] = source.size
        try:
            thumbnail = _thumbnail(source, settings)
        except PermanentError:
            storage.delete(destination, thumbnail_key)  # a thumbnail of an earlier version must go too
            if storage.etag(ref.bucket, ref.key) == source.etag:
                raise
            continue
        for failure in thumbnail.fast_path_failures:
            log(
                logger,
                logging.WARNING,
                f"the {failure.name} fast path failed; the generic path made the thumbnail (a bug to fix)",
                **fields,
                fast_path=failure.name,
                error=failure.error,
            )
        storage.store(destination, thumbnail_key, thumbnail, source.etag)
        if storage.etag(ref.bucket, ref.key) == source.etag:
            return _made(ref, thumbnail)
    raise SourceKeptChanging(
        f"s3://{ref.bucket}/{ref.key} changed during each of {MAX_ROUNDS} rounds of work"
    )


def _spelling_that_exists(ref: S3ObjectRef, storage: Storage, destination: str, prefix: str) -> S3ObjectRef:
    """The key as the event spells it, or URL-decoded when only that names the source (or, for a
    removal, its thumbnail): AWS documents no encoding for EventBridge's S3 keys (LocalStack and
    moto send them as they are), and a wrong guess would lose a thumbnail without a trace."""
    for key in (ref.key, ref.decoded_key):
        thumbnail_key = prefix + key  # one over S3's limit gets a bare 400, not a 404: never ask
        if storage.etag(ref.bucket, key) is not None or (
            ref.is_removal
            and len(thumbnail_key.encode()) <= MAX_KEY_BYTES
            and storage.etag(destination, thumbnail_key) is not None
        ):
            return replace(ref, key=key, decoded_key=None)
    return replace(ref, decoded_key=None)


def _up_to_date(ref: S3ObjectRef, storage: Storage, destination: str, thumbnail_key: str) -> bool:
    """True when the thumbnail's recorded source ETag is the source's current one."""
    made_from = storage.made_from(destination, thumbnail_key)
    if made_from is None:  # no thumbnail, or one written before thumbnails recorded their source
        return False
    current = storage.etag(ref.bucket, ref.key)
    return current is not None and current.strip('"') == made_from


def _thumbnail(source: SourceObject, settings: Settings) -> Thumbnail:
    if source.data is None:
        raise SourceTooLarge(f"{source.size} bytes is more than the limit of {settings.max_source_bytes}")
    return make_thumbnail(
        source.data,
        max_size=settings.max_size,
        max_pixels=settings.max_source_pixels,
        jpeg_quality=settings.jpeg_quality,
    )


def _gone(ref: S3ObjectRef) -> Result:
    if ref.is_removal:
        return Result("thumbnail_deleted", logging.INFO, "thumbnail deleted", {})
    return Result(
        "skipped_missing",
        logging.WARNING,
        "skipped: the source no longer exists (deleted after this upload); no thumbnail left for it",
        {"reason": "missing"},
    )


def _made(ref: S3ObjectRef, thumbnail: Thumbnail) -> Result:
    details = {
        "source_format": thumbnail.source_format,
        "source_width": thumbnail.source_width,
        "source_height": thumbnail.source_height,
        "thumbnail_bytes": len(thumbnail.data),
        "thumbnail_format": thumbnail.format,
        "content_type": thumbnail.content_type,
        "width": thumbnail.width,
        "height": thumbnail.height,
    }
    if ref.is_removal:
        message = "thumbnail kept: the source exists again (uploaded after this removal), made anew from it"
        return Result("kept_source_exists", logging.INFO, message, details)
    return Result("created", logging.INFO, "thumbnail created", details)
