"""Create the missing and stale thumbnails of objects that are already in a bucket.

    python -m ops.backfill --bucket NAME --function NAME [--prefix P] [--dry-run] [--concurrency 4]
    python -m ops.backfill --bucket NAME --local [...]   # the same work in this process (Pillow)
    python -m ops.backfill --bucket NAME --function NAME --engine s3-batch [--start]

For buckets that held images before the function was attached to them, or after an outage.
The bucket is listed page by page (--page-size) together with the thumbnail prefix, and the two
sorted listings are merged, so memory stays flat however large the bucket is. A source gets
processed when it has no thumbnail (`missing`) or its thumbnail is older than the source
(`stale`); a thumbnail at least as new as its source is left alone (S3 timestamps have one-second
resolution, and the function writes within the second of the upload). Keys under the thumbnail
prefix and folder markers (keys ending in "/") are never sources.

Engines. `invoke` (the default; small buckets, LocalStack): each source is processed by invoking
the deployed function synchronously with an `ObjectCreated:Backfill` event for it (so the
function's settings, code and permissions apply, and its log lines say `event_name:
ObjectCreated:Backfill`), at most --concurrency at a time; or, with --local, by the same pipeline
in this process with settings from the environment variables the function reads. `s3-batch`
(large buckets): an S3 Batch Operations job invokes the function for every object of a manifest
(the bucket's newest S3 Inventory report, or the listing's missing and stale sources written as
CSV) and writes a completion report of the objects left without a thumbnail; see ops/batch.py.
The job waits for confirmation unless --start; the command prints its id and the commands that
start and follow it. --dry-run lists what would be processed, as JSON lines on stdout, and
changes nothing (with s3-batch it also prints the CreateJob request it would send).

A progress bar goes to stderr when it is a terminal (--progress forces it); the summary is one
JSON object on stdout. Exit status: 0 when nothing failed, 1 when some objects failed (they are
named in the summary; run again to retry them), 2 for usage errors. Credentials and region come
from the usual AWS chain; AWS_ENDPOINT_URL (LocalStack) is honoured by boto3 itself.
"""

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import quote_plus

from ops import batch
from ops.aws import FunctionInvoker, clients

BACKFILL_EVENT_NAME = "ObjectCreated:Backfill"
DEFAULT_PREFIX = "thumbnails/"
DEFAULT_CONCURRENCY = 4
DEFAULT_PAGE_SIZE = 1000  # the S3 maximum
FAILED_SAMPLE = 20
# --local: the time each object may take, as a function with a 30 s timeout would have it.
PER_OBJECT_DEADLINE_S = 30.0


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object."""

    key: str
    last_modified: datetime
    size: int = 0


@dataclass(frozen=True)
class Decision:
    """What to do with one listed source: `missing` and `stale` are work, the rest is skipped."""

    action: str  # missing | stale | up_to_date | thumbnail | folder_marker
    source: ObjectInfo

    @property
    def is_work(self) -> bool:
        """True when the source needs a (new) thumbnail."""
        return self.action in ("missing", "stale")


def list_objects(s3, bucket: str, prefix: str, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[ObjectInfo]:
    """Every object under `prefix`, page by page, in S3's order (UTF-8 binary order of keys)."""
    paginator = s3.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
    for page in pages:
        for item in page.get("Contents", []):
            yield ObjectInfo(item["Key"], item["LastModified"], item.get("Size", 0))


def plan(
    sources: Iterable[ObjectInfo],
    thumbnails: Iterable[ObjectInfo],
    thumbnail_prefix: str,
    orphans: list[str] | None = None,
) -> Iterator[Decision]:
    """Merge the sorted source and thumbnail listings into one decision per source.

    Both listings must be in S3's key order; thumbnail keys are `thumbnail_prefix` + source key,
    so stripping the prefix keeps them sorted the same way (Python compares str by code point,
    which is UTF-8 byte order). Thumbnails without a source are appended to `orphans` if given.
    """
    thumbs = iter(thumbnails)
    thumb = next(thumbs, None)
    for source in sources:
        if source.key.startswith(thumbnail_prefix):
            yield Decision("thumbnail", source)
            continue
        if source.key.endswith("/"):
            yield Decision("folder_marker", source)
            continue
        while thumb is not None and thumb.key[len(thumbnail_prefix) :] < source.key:
            if orphans is not None:
                orphans.append(thumb.key)
            thumb = next(thumbs, None)
        if thumb is None or thumb.key[len(thumbnail_prefix) :] != source.key:
            yield Decision("missing", source)
            continue
        fresh = thumb.last_modified >= source.last_modified
        yield Decision("up_to_date" if fresh else "stale", source)
        thumb = next(thumbs, None)
    if orphans is not None:
        while thumb is not None:
            orphans.append(thumb.key)
            thumb = next(thumbs, None)


def backfill_event(bucket: str, key: str, size: int | None = None) -> dict:
    """An S3 notification naming one existing object, encoded as S3 encodes keys ('+' for space)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": BACKFILL_EVENT_NAME,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/")},
        },
    }
    if size is not None:
        record["s3"]["object"]["size"] = size
    return {"Records": [record]}


@dataclass(frozen=True)
class Result:
    """Outcome of processing one source: the pipeline's outcome name, or `failed` and why."""

    outcome: str
    error: str | None = None


class LambdaProcessor:
    """Processes a source by invoking the deployed function synchronously."""

    def __init__(self, lambda_client, function: str):
        self._invoke, self._function = FunctionInvoker(lambda_client), function

    def __call__(self, bucket: str, source: ObjectInfo) -> Result:
        """Invoke the function with a backfill event for `source`."""
        invocation = self._invoke(self._function, backfill_event(bucket, source.key, source.size))
        if not invocation.ok:
            return Result("failed", invocation.error)
        return Result(next(iter(invocation.outcomes), "unknown"))


class LocalProcessor:
    """Processes a source in this process with the function's own pipeline and S3 client."""

    def __init__(self, environ=os.environ, prefix: str | None = None, bucket: str | None = None):
        from thumbnailer.logs import get_logger
        from thumbnailer.settings import Settings
        from thumbnailer.storage import S3Storage

        settings = Settings.from_env(environ)
        self.settings = replace(settings, prefix=prefix or settings.prefix, bucket=bucket or settings.bucket)
        self._storage = S3Storage()
        self._logger = get_logger("WARNING")  # per-object lines would drown the progress bar

    def __call__(self, bucket: str, source: ObjectInfo) -> Result:
        """Run the pipeline for `source`; a transient failure is reported, not raised."""
        from thumbnailer.events import S3ObjectRef
        from thumbnailer.pipeline import process_object
        from thumbnailer.storage import Deadline

        ref = S3ObjectRef(bucket=bucket, key=source.key, event_name=BACKFILL_EVENT_NAME, size=source.size)
        try:
            storage = self._storage.within(Deadline.after(PER_OBJECT_DEADLINE_S))
            return Result(process_object(ref, storage, self.settings, self._logger).name)
        except Exception as exc:  # transient (throttling, network): reported, retried by a rerun
            return Result("failed", f"{type(exc).__name__}: {exc}")


class ProgressBar:
    """A one-line progress bar on a terminal: done/planned, listing state, outcomes, rate."""

    WIDTH = 30
    MIN_INTERVAL_S = 0.1

    def __init__(self, stream, enabled: bool):
        self._stream, self.enabled = stream, enabled
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, stats: "Stats", force: bool = False) -> None:
        """Redraw, at most every MIN_INTERVAL_S unless `force`."""
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.MIN_INTERVAL_S):
            return
        self._last = now
        done, planned = stats.done, stats.planned
        filled = int(self.WIDTH * done / planned) if planned else (self.WIDTH if stats.listing_done else 0)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        rate = done / max(now - self._started, 1e-9)
        listing = "listed" if stats.listing_done else "listing"
        outcomes = " ".join(f"{name} {count}" for name, count in sorted(stats.outcomes.items()))
        self._stream.write(
            f"\r[{bar}] {done}/{planned} {listing} {stats.listed} objects | {outcomes} | {rate:.1f}/s\x1b[K"
        )
        self._stream.flush()

    def close(self, stats: "Stats") -> None:
        """Final redraw and newline."""
        if self.enabled:
            self.update(stats, force=True)
            self._stream.write("\n")
            self._stream.flush()


@dataclass
class Stats:
    """Running counts; `planned` grows while the listing goes on."""

    listed: int = 0
    decisions: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    orphans: list = field(default_factory=list)
    done: int = 0
    listing_done: bool = False

    @property
    def planned(self) -> int:
        """Sources found to need work so far."""
        return self.decisions["missing"] + self.decisions["stale"]


def run(
    decisions: Iterable[Decision],
    process: Callable[[str, ObjectInfo], Result],
    bucket: str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    progress: ProgressBar | None = None,
    stats: Stats | None = None,
    emit: Callable[[dict], None] = lambda item: None,
) -> Stats:
    """Process each decision that is work, at most `concurrency` at a time, counting everything.

    At most 2 x concurrency objects are in flight, so the listing never runs far ahead of the work.
    """
    stats = stats or Stats()
    progress = progress or ProgressBar(sys.stderr, enabled=False)
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(2 * max(1, concurrency))

    def finish(source: ObjectInfo, action: str, result: Result) -> None:
        with lock:
            stats.done += 1
            stats.outcomes[result.outcome] += 1
            if result.error is not None:
                stats.failures.append({"key": source.key, "action": action, "error": result.error})
            progress.update(stats)
        slots.release()

    def work(source: ObjectInfo, action: str) -> None:
        try:
            result = process(bucket, source)
        except Exception as exc:  # a processor bug must not stop the other objects
            result = Result("failed", f"{type(exc).__name__}: {exc}")
        finish(source, action, result)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for decision in decisions:
            with lock:
                stats.listed += 1
                stats.decisions[decision.action] += 1
                progress.update(stats)
            if not decision.is_work:
                continue
            if dry_run:
                emit({"key": decision.source.key, "action": decision.action})
                continue
            slots.acquire()
            pool.submit(work, decision.source, decision.action)
        with lock:
            stats.listing_done = True
            progress.update(stats, force=True)
    progress.close(stats)
    return stats


def summarise(stats: Stats, *, bucket: str, prefix: str, dry_run: bool, seconds: float) -> dict:
    """The end-of-run summary printed on stdout."""
    decisions = stats.decisions
    return {
        "bucket": bucket,
        "prefix": prefix,
        "dry_run": dry_run,
        "sources": stats.listed - decisions["thumbnail"] - decisions["folder_marker"],
        "missing": decisions["missing"],
        "stale": decisions["stale"],
        "up_to_date": decisions["up_to_date"],
        "skipped_thumbnails": decisions["thumbnail"],
        "skipped_folder_markers": decisions["folder_marker"],
        "processed": stats.done,
        "outcomes": dict(stats.outcomes),
        "failed": stats.outcomes["failed"],
        "failures": stats.failures[:FAILED_SAMPLE],
        "orphaned_thumbnails": len(stats.orphans),
        "orphaned_thumbnails_sample": stats.orphans[:FAILED_SAMPLE],
        "seconds": round(seconds, 2),
    }


def function_settings(lambda_client, function: str) -> tuple[str, str | None]:
    """THUMBNAIL_PREFIX and THUMBNAIL_BUCKET as the deployed function has them."""
    variables = (
        lambda_client.get_function_configuration(FunctionName=function)
        .get("Environment", {})
        .get("Variables", {})
    )
    return variables.get("THUMBNAIL_PREFIX") or DEFAULT_PREFIX, variables.get("THUMBNAIL_BUCKET") or None


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True, help="bucket holding the source images")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--function", help="deployed function to invoke for each object")
    target.add_argument("--local", action="store_true", help="process in this process (needs Pillow)")
    parser.add_argument("--prefix", default="", help="only sources under this prefix")
    parser.add_argument(
        "--thumbnail-prefix",
        help="default: THUMBNAIL_PREFIX of the function (or, with --local, of the environment)",
    )
    parser.add_argument(
        "--thumbnail-bucket", help="default: THUMBNAIL_BUCKET of the function or environment, else --bucket"
    )
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="objects at once")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="keys per list request")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be processed; change nothing"
    )
    parser.add_argument(
        "--progress", action="store_true", help="draw the progress bar even if not a terminal"
    )
    engine = parser.add_argument_group("--engine s3-batch")
    engine.add_argument("--engine", choices=["invoke", "s3-batch"], default="invoke", help="default: invoke")
    engine.add_argument(
        "--role-arn", help="the job's role (default: the stack output BatchOperationsRoleArn)"
    )
    engine.add_argument(
        "--work-bucket", help="for the manifest and the report (default: the stack output BatchWorkBucket)"
    )
    engine.add_argument(
        "--manifest",
        choices=["auto", "listing"],
        default="auto",
        help="auto: the newest S3 Inventory report if the bucket has one (and no --prefix), else a listing",
    )
    engine.add_argument(
        "--start", action="store_true", help="run the job at once (default: await confirmation)"
    )
    engine.add_argument("--priority", type=int, default=batch.DEFAULT_PRIORITY, help="the job's priority")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or not 1 <= args.page_size <= DEFAULT_PAGE_SIZE:
        parser.error(f"--concurrency must be >= 1 and --page-size 1..{DEFAULT_PAGE_SIZE}")
    if args.engine == "s3-batch" and args.local:
        parser.error("--engine s3-batch invokes a deployed function: give --function")

    s3, lambda_client, s3control, cloudformation = clients(
        "s3", "lambda", "s3control", "cloudformation", concurrency=args.concurrency
    )
    if args.local:
        processor = LocalProcessor(prefix=args.thumbnail_prefix, bucket=args.thumbnail_bucket)
        thumbnail_prefix, thumbnail_bucket = processor.settings.prefix, processor.settings.bucket
    else:
        processor = LambdaProcessor(lambda_client, args.function)
        thumbnail_prefix, thumbnail_bucket = function_settings(lambda_client, args.function)
        # The function writes where its own settings say; an override only changes what is compared.
        thumbnail_prefix = args.thumbnail_prefix or thumbnail_prefix
        thumbnail_bucket = args.thumbnail_bucket or thumbnail_bucket
    thumbnail_bucket = thumbnail_bucket or args.bucket

    started = time.monotonic()
    stats = Stats()

    def decisions() -> Iterator[Decision]:
        sources = list_objects(s3, args.bucket, args.prefix, args.page_size)
        thumbnails = list_objects(s3, thumbnail_bucket, thumbnail_prefix + args.prefix, args.page_size)
        # Keys under the thumbnail prefix are never sources, even when thumbnails live elsewhere.
        return plan(sources, thumbnails, thumbnail_prefix, orphans=stats.orphans)

    def emit(item: dict) -> None:
        print(json.dumps(item, ensure_ascii=False), flush=True)

    if args.engine == "s3-batch":
        function = batch.FunctionArn(
            lambda_client.get_function_configuration(FunctionName=args.function)["FunctionArn"]
        )
        if not (args.role_arn and args.work_bucket):
            outputs = batch.function_stack_outputs(lambda_client, cloudformation, function.arn)
            args.role_arn = args.role_arn or outputs.get("BatchOperationsRoleArn")
            args.work_bucket = args.work_bucket or outputs.get("BatchWorkBucket")
        if not (args.role_arn and args.work_bucket):
            parser.error(
                f"{args.function}'s stack has no batch role: deploy it with `--param batchRole=true` "
                "(or give --role-arn and --work-bucket)"
            )
        summary = batch_backfill(args, function, s3, s3control, decisions, stats, emit)
        summary["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    progress = ProgressBar(sys.stderr, enabled=args.progress or sys.stderr.isatty())
    run(
        decisions(),
        processor,
        args.bucket,
        concurrency=args.concurrency,
        dry_run=args.dry_run,
        progress=progress,
        stats=stats,
        emit=emit,
    )
    summary = summarise(
        stats,
        bucket=args.bucket,
        prefix=args.prefix,
        dry_run=args.dry_run,
        seconds=time.monotonic() - started,
    )
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if summary["failed"] else 0


def batch_backfill(args, function: batch.FunctionArn, s3, s3control, decisions, stats: Stats, emit) -> dict:
    """The s3-batch engine: find or write the manifest, create the job; the summary to print."""
    use_inventory = args.manifest == "auto" and not args.prefix
    manifest = batch.latest_inventory(s3, args.bucket) if use_inventory else None
    summary: dict = {
        "engine": "s3-batch",
        "bucket": args.bucket,
        "prefix": args.prefix,
        "dry_run": args.dry_run,
    }
    if manifest is None:
        work = (d.source.key for d in _counted(decisions(), stats) if d.is_work)
        if args.dry_run:
            for key in work:
                emit({"key": key})
        else:
            key = f"{batch.MANIFEST_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.csv"
            manifest = batch.write_manifest(s3, args.bucket, work, args.work_bucket, key)
        counts = summarise(stats, bucket=args.bucket, prefix=args.prefix, dry_run=args.dry_run, seconds=0)
        summary.update({name: counts[name] for name in ("sources", "missing", "stale", "up_to_date")})
        if manifest is None:  # a dry run
            manifest = batch.Manifest(
                args.work_bucket, f"{batch.MANIFEST_PREFIX}(not written)", "", batch.CSV_MANIFEST
            )
    summary["manifest"] = {"url": manifest.url, "format": manifest.format, "objects": manifest.objects}
    request = batch.job_request(
        function=function,
        role_arn=args.role_arn,
        manifest=manifest,
        report_bucket=args.work_bucket,
        start=args.start,
        description=f"thumbnail backfill of s3://{args.bucket}/{args.prefix}",
        priority=args.priority,
    )
    if args.dry_run:
        summary["create_job_request"] = request
        return summary
    if manifest.objects == 0:
        summary["job_id"] = None  # nothing to do: no job (Batch Operations refuses an empty manifest)
        return summary
    job_id = s3control.create_job(**request)["JobId"]
    summary.update(
        job_id=job_id,
        status="running" if args.start else "awaiting confirmation",
        report=f"s3://{args.work_bucket}/{batch.REPORT_PREFIX}/job-{job_id}/",
        commands=batch.follow_commands(function, job_id, started=args.start),
    )
    return summary


def _counted(decisions: Iterable[Decision], stats: Stats) -> Iterator[Decision]:
    for decision in decisions:
        stats.listed += 1
        stats.decisions[decision.action] += 1
        yield decision


if __name__ == "__main__":
    sys.exit(main())
