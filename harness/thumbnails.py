"""Upload sources to the deployed stack and wait, against a deadline, for their thumbnails.

Every "upload, then poll for the thumbnail" of the demo, the benchmark and the end-to-end tests
goes through `wait_for_thumbnails`: it lists the thumbnails under the keys' common prefix, so
one request per poll covers a burst as well as a single key.
"""

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harness.function_log import FunctionLog
from harness.waiting import wait_until
from thumbnailer.settings import Settings

THUMBNAIL_PREFIX = Settings().prefix  # the default, which the deployed stacks keep


def thumbnail_key(key: str) -> str:
    """Where the function writes the thumbnail of `key` (the deployed default THUMBNAIL_PREFIX)."""
    return THUMBNAIL_PREFIX + key


@dataclass(frozen=True)
class Arrival:
    """A thumbnail a poll found: its key, its size and `time.monotonic()` when it was seen."""

    key: str
    size: int
    seen_at: float


@dataclass
class Settled:
    """Where each awaited source stands: a thumbnail, a logged rejection (its reason), or pending."""

    thumbnails: dict[str, Arrival] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)


def upload_all(s3, bucket: str, bodies: Mapping[str, bytes], *, threads: int = 1) -> dict[str, float]:
    """Put every key with its body (`threads` at once); returns when each put returned (monotonic)."""

    def put(key: str) -> tuple[str, float]:
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[key])
        return key, time.monotonic()

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return dict(pool.map(put, bodies))


def wait_for_thumbnails(
    s3,
    bucket: str,
    keys: Iterable[str],
    *,
    deadline_s: float,
    log: FunctionLog | None = None,
    poll_s: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
    require_all: bool = True,
) -> Settled:
    """Poll until every key has its thumbnail or, given the function's `log`, a logged rejection.

    At the deadline: TimeoutError naming what is missing, or with `require_all=False` the result
    with those keys in `pending`. `progress(settled, total)` is called after every poll.
    """
    settled = Settled(pending=set(keys))
    total = len(settled.pending)
    sources = {thumbnail_key(key): key for key in settled.pending}
    prefix = os.path.commonprefix(list(sources))  # noqa: RUF071 - S3 prefixes are strings, not paths

    def poll() -> bool:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                source = sources.get(item["Key"])
                if source in settled.pending:
                    settled.pending.discard(source)
                    settled.thumbnails[source] = Arrival(item["Key"], item["Size"], time.monotonic())
        if log is not None and settled.pending:
            for line in log.read().for_keys(settled.pending):
                if line.get("outcome") == "rejected":
                    settled.pending.discard(line["key"])
                    settled.rejected[line["key"]] = line.get("reason", "rejected")
        if progress is not None:
            progress(total - len(settled.pending), total)
        return not settled.pending

    try:
        wait_until(poll, deadline_s=deadline_s, what="thumbnails", poll_s=poll_s)
    except TimeoutError:
        if require_all:
            missing = sorted(settled.pending)
            raise TimeoutError(
                f"{len(missing)} of {total} thumbnails not in s3://{bucket}/{THUMBNAIL_PREFIX} within "
                f"{deadline_s:.0f} s: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            ) from None
    return settled


def upload_and_wait(
    s3, bucket: str, key: str, body: bytes, *, deadline_s: float, poll_s: float = 0.1
) -> float:
    """Put `key`, wait for its thumbnail; the seconds from the start of the put until a poll saw it."""
    started = time.monotonic()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    settled = wait_for_thumbnails(s3, bucket, [key], deadline_s=deadline_s, poll_s=poll_s)
    return settled.thumbnails[key].seen_at - started
