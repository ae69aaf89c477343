"""What happens to one Lambda event: every record tried, outcomes logged, failures sorted.

Creations get a thumbnail, removals lose theirs. Permanent problems (bad image, missing
object, recursion) are logged and skipped. Any other exception is treated as transient: the
remaining records still run, then RecordsFailed is raised so that Lambda retries the event.
Re-processing is harmless: output is deterministic and deleting a missing key succeeds.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from thumbnailer.core import Thumbnail, make_thumbnail
from thumbnailer.errors import (
    MalformedEvent,
    PermanentError,
    RecordsFailed,
    SourceMissing,
)
from thumbnailer.events import S3ObjectRef, parse_event
from thumbnailer.logs import log
from thumbnailer.settings import Settings


class Storage(Protocol):
    """What the pipeline needs from object storage (S3Storage, or a stub in tests)."""

    def fetch(self, bucket: str, key: str, max_bytes: int) -> bytes: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def store(self, bucket: str, key: str, thumbnail: Thumbnail) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one object; `name` is the `outcome` field of its log line."""

    name: str
    thumbnail_key: str | None = None


def handle_event(
    event: object,
    storage: Storage,
    settings: Settings,
    logger: logging.Logger,
    request_id: str | None = None,
) -> dict:
    """Process every object an S3 event names and return counts per outcome."""
    parsed = parse_event(event)
    if parsed.is_test_event:
        log(logger, logging.INFO, "ignored s3:TestEvent", outcome="ignored_test_event", request_id=request_id)
        return {"records": 0, "outcomes": {}}

    outcomes: Counter[str] = Counter()
    failures: list[tuple[S3ObjectRef, Exception]] = []
    for ref in parsed.objects:
        try:
            outcomes[process_object(ref, storage, settings, logger, request_id).name] += 1
        except Exception as exc:  # transient: keep going, re-raise once all records are done
            outcomes["failed"] += 1
            failures.append((ref, exc))

    if parsed.malformed:
        raise MalformedEvent("; ".join(parsed.malformed))
    if failures:
        summary = "; ".join(f"s3://{r.bucket}/{r.key}: {type(e).__name__}: {e}" for r, e in failures)
        raise RecordsFailed(
            f"{len(failures)} of {len(parsed.objects)} records failed and will be retried: {summary}"
        ) from failures[0][1]
    return {"records": len(parsed.objects), "outcomes": dict(outcomes)}


def process_object(
    ref: S3ObjectRef,
    storage: Storage,
    settings: Settings,
    logger: logging.Logger,
    request_id: str | None = None,
) -> Outcome:
    """Act on one record, logging one JSON line with the outcome.

    A created object gets its thumbnail; a removed object loses its thumbnail. Keys under the
    thumbnail prefix are skipped either way (the recursion guard), other events are ignored.
    """
    started = time.perf_counter()
    fields: dict[str, object] = {
        "bucket": ref.bucket,
        "key": ref.key,
        "event_name": ref.event_name,
        "request_id": request_id,
    }

    def finish(level: int, message: str, outcome: Outcome, **extra: object) -> Outcome:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log(logger, level, message, **fields, outcome=outcome.name, duration_ms=duration_ms, **extra)
        return outcome

    if not (ref.is_creation or ref.is_removal):
        return finish(logging.INFO, "ignored: neither a creation nor a removal", Outcome("ignored_event"))
    if ref.key.startswith(settings.prefix):
        return finish(
            logging.INFO,
            f"skipped: key is under the thumbnail prefix {settings.prefix!r} (recursion guard)",
            Outcome("skipped_recursion"),
        )
    destination = settings.destination_bucket(ref.bucket)
    thumbnail_key = settings.prefix + ref.key
    try:
        if ref.is_removal:
            return _remove(ref, storage, destination, thumbnail_key, finish)
        return _create(ref, storage, settings, destination, thumbnail_key, finish, fields, logger)
    except Exception as exc:  # transient: logged once here, raised for Lambda's retry
        finish(logging.ERROR, f"failed, will be retried: {exc}", Outcome("failed"), error=type(exc).__name__)
        raise


def _create(
    ref: S3ObjectRef,
    storage: Storage,
    settings: Settings,
    destination: str,
    thumbnail_key: str,
    finish,
    fields: dict[str, object],
    logger: logging.Logger,
) -> Outcome:
    """Make and store the thumbnail of a created source; permanent problems are logged, not raised."""
    try:
        source = storage.fetch(ref.bucket, ref.key, settings.max_source_bytes)
        fields["source_bytes"] = len(source)
        thumbnail = make_thumbnail(
            source,
            max_size=settings.max_size,
            max_pixels=settings.max_source_pixels,
            jpeg_quality=settings.jpeg_quality,
        )
        for failure in thumbnail.fast_path_failures:
            log(
                logger,
                logging.WARNING,
                f"the {failure.name} fast path failed; the generic path made the thumbnail (a bug to fix)",
                **fields,
                fast_path=failure.name,
                error=failure.error,
            )
        storage.store(destination, thumbnail_key, thumbnail)
    except SourceMissing as exc:
        return finish(logging.WARNING, f"skipped: {exc}", Outcome("skipped_missing"), reason=exc.reason)
    except PermanentError as exc:
        return finish(
            logging.ERROR,
            f"rejected: {exc}",
            Outcome("rejected"),
            reason=exc.reason,
            error=type(exc).__name__,
        )
    return finish(
        logging.INFO,
        "thumbnail created",
        Outcome("created", thumbnail_key),
        thumbnail_bucket=destination,
        thumbnail_key=thumbnail_key,
        source_format=thumbnail.source_format,
        source_width=thumbnail.source_width,
        source_height=thumbnail.source_height,
        thumbnail_bytes=len(thumbnail.data),
        thumbnail_format=thumbnail.format,
        content_type=thumbnail.content_type,
        width=thumbnail.width,
        height=thumbnail.height,
    )


def _remove(ref: S3ObjectRef, storage: Storage, destination: str, thumbnail_key: str, finish) -> Outcome:
    """Delete the thumbnail of a removed source, unless the source exists again.

    Delete and re-upload of one key can be delivered in either order; a source that exists
    when the delete event runs was uploaded again, and its own creation event owns the
    thumbnail. Deleting a thumbnail that does not exist succeeds, so replays are harmless.
    """
    if storage.exists(ref.bucket, ref.key):
        return finish(
            logging.INFO,
            "thumbnail kept: the source exists again (uploaded after this delete)",
            Outcome("kept_source_exists", thumbnail_key),
            thumbnail_bucket=destination,
            thumbnail_key=thumbnail_key,
        )
    storage.delete(destination, thumbnail_key)
    return finish(
        logging.INFO,
        "thumbnail deleted",
        Outcome("thumbnail_deleted", thumbnail_key),
        thumbnail_bucket=destination,
        thumbnail_key=thumbnail_key,
    )
