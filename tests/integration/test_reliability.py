"""Reliability on the deployed stack in LocalStack: bursts, deletes, backfill, injected faults, redrive.

Fault injection. LocalStack's community edition stores bucket policies but does not enforce them
(the stack's own DenyInsecureTransport policy would otherwise refuse every plain-HTTP call), and it
has no chaos API. The fault used instead is real and external to the code: THUMBNAIL_BUCKET is
pointed at a bucket that does not exist, so every thumbnail write fails with NoSuchBucket (a
transient error for the function), and creating that bucket repairs it. Only one configuration
change per class, and none while a fault is being switched on or off.

Asynchronous retries. LocalStack retries a failed asynchronous invocation after
retries x LAMBDA_RETRY_BASE_DELAY seconds (default 60: 60 s, then 120 s), keeping the request id,
then writes the on-failure record to the SQS destination. Export LAMBDA_RETRY_BASE_DELAY (for
example 5) to the process that starts LocalStack to make the fault tests take seconds instead of
minutes; the deadlines here follow the same variable.
"""

import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from harness import REPO_ROOT
from harness.fixtures import INVALID_IMAGES, VALID_IMAGES, image_bytes
from harness.function_log import FunctionLog
from harness.localstack import FAST_WAITER, REGION
from harness.thumbnails import thumbnail_key, upload_all, wait_for_thumbnails
from harness.waiting import wait_until

pytestmark = pytest.mark.localstack

REPORT_DIR = REPO_ROOT / "build" / "reliability"
BURST_SIZE = 200
UPLOAD_THREADS = 16
RETRY_BASE_DELAY_S = int(os.environ.get("LAMBDA_RETRY_BASE_DELAY") or 60)
MAXIMUM_RETRY_ATTEMPTS = 2  # serverless.yml: maximumRetryAttempts
# First attempt, then the retries at 1x and 2x the base delay; plus room for a slow machine.
EXHAUSTED_DEADLINE_S = 3 * RETRY_BASE_DELAY_S + 90
POLL_S = 0.25
TEST_EVENT = json.dumps({"Event": "s3:TestEvent"}).encode()
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def removals(window: FunctionLog, keys: set[str]) -> list[dict]:
    """The JSON lines of removal events (`ObjectRemoved:*`) about these keys."""
    return [line for line in window.for_keys(keys) if line.get("event_name", "").startswith("ObjectRemoved:")]


@pytest.fixture(scope="module")
def logs(aws_client):
    """CloudWatch Logs client bound to LocalStack."""
    return aws_client("logs")


@pytest.fixture(scope="module")
def fast_s3(aws_client):
    """An S3 client with a connection pool large enough for UPLOAD_THREADS concurrent calls."""
    return aws_client("s3", max_pool_connections=2 * UPLOAD_THREADS)


def listed_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def write_report(name: str, figures: dict) -> None:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def test_burst_of_mixed_uploads_gets_one_thumbnail_per_valid_image(
    fast_s3, deployed_stack, logs, record_property
):
    bucket = deployed_stack.bucket
    prefix = f"it-burst-{uuid.uuid4().hex[:8]}/"
    names = list(itertools.islice(itertools.cycle(sorted(VALID_IMAGES) + sorted(INVALID_IMAGES)), BURST_SIZE))
    uploads = {f"{prefix}{index:03d}-{name}": name for index, name in enumerate(names)}
    valid = {key for key, name in uploads.items() if name in VALID_IMAGES}
    expected_thumbnails = {thumbnail_key(key) for key in valid}
    window = FunctionLog.from_now(logs, deployed_stack.log_group)

    started = time.monotonic()
    bodies = {key: image_bytes(name) for key, name in uploads.items()}
    uploaded_s = max(upload_all(fast_s3, bucket, bodies, threads=UPLOAD_THREADS).values()) - started
    wait_for_thumbnails(fast_s3, bucket, valid, deadline_s=300, poll_s=POLL_S)
    thumbnails_s = time.monotonic() - started
    # Every upload logs one line; so does every thumbnail write, which triggers the function once more.
    wait_until(
        lambda: len(window.read().for_keys(set(uploads) | expected_thumbnails)) >= BURST_SIZE + len(valid),
        deadline_s=120,
        what="a log line per invocation",
    )
    logged_s = time.monotonic() - started

    assert set(listed_keys(fast_s3, bucket, f"thumbnails/{prefix}")) == expected_thumbnails
    assert listed_keys(fast_s3, bucket, f"thumbnails/thumbnails/{prefix}") == []
    for key in sorted(valid):
        expected_type = MIME[VALID_IMAGES[uploads[key]]]
        assert fast_s3.head_object(Bucket=bucket, Key=f"thumbnails/{key}")["ContentType"] == expected_type, (
            key
        )
    source_lines = window.for_keys(set(uploads))
    assert Counter(line["key"] for line in source_lines) == Counter(uploads.keys()), "one line per upload"
    for line in source_lines:
        name = uploads[line["key"]]
        if name in VALID_IMAGES:
            assert line["outcome"] == "created", line
        else:
            assert (line["outcome"], line["reason"]) == ("rejected", INVALID_IMAGES[name]), line
    recursion_lines = window.for_keys(expected_thumbnails)
    assert sorted(line["key"] for line in recursion_lines) == sorted(expected_thumbnails)
    assert {line["outcome"] for line in recursion_lines} == {"skipped_recursion"}
    # Invocations counted from the START lines of their request ids: a retry or a second
    # delivery would add a START line for the same id or a second line for the same key.
    source_invocations = sum(window.starts[line["request_id"]] for line in source_lines)
    recursion_invocations = sum(window.starts[line["request_id"]] for line in recursion_lines)
    assert source_invocations == BURST_SIZE
    assert recursion_invocations == len(valid)

    # Deleting every source removes every thumbnail (ObjectRemoved, one request for all keys).
    delete_started = time.monotonic()
    fast_s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": key} for key in uploads], "Quiet": True}
    )
    wait_until(
        lambda: not listed_keys(fast_s3, bucket, thumbnail_key(prefix)),
        deadline_s=300,
        what="thumbnails deleted",
    )
    removed = wait_until(
        lambda: (
            (found := removals(window.read(), set(uploads) | expected_thumbnails))
            and len(found) >= BURST_SIZE + len(valid)
            and found
        ),
        deadline_s=120,
        what="a log line per removal",
    )
    deleted_s = time.monotonic() - delete_started
    assert Counter(line["outcome"] for line in removed) == {
        "thumbnail_deleted": BURST_SIZE,  # deleting a thumbnail that never existed succeeds too
        "skipped_recursion": len(valid),
    }

    figures = {
        "uploads": BURST_SIZE,
        "valid": len(valid),
        "invalid": BURST_SIZE - len(valid),
        "upload_threads": UPLOAD_THREADS,
        "seconds_to_upload": round(uploaded_s, 2),
        "seconds_to_last_thumbnail": round(thumbnails_s, 2),
        "seconds_to_last_log_line": round(logged_s, 2),
        "invocations_for_uploads": source_invocations,
        "invocations_for_thumbnail_writes": recursion_invocations,
        "seconds_to_delete_all_thumbnails": round(deleted_s, 2),
        "cpus": os.cpu_count(),
    }
    write_report("burst", figures)
    for name, value in figures.items():
        record_property(name, value)


def test_deleting_a_source_deletes_its_thumbnail_and_deleting_a_thumbnail_does_nothing(
    s3, deployed_stack, key_prefix, logs, wait_for_thumbnail
):
    bucket = deployed_stack.bucket
    window = FunctionLog.from_now(logs, deployed_stack.log_group)
    source, kept = key_prefix + "delete me.jpg", key_prefix + "keep me.png"
    s3.put_object(Bucket=bucket, Key=source, Body=image_bytes("jpeg-baseline.jpg"))
    s3.put_object(Bucket=bucket, Key=kept, Body=image_bytes("png-rgb.png"))
    wait_for_thumbnail(source)
    wait_for_thumbnail(kept)

    s3.delete_object(Bucket=bucket, Key=source)
    wait_until(
        lambda: not listed_keys(s3, bucket, thumbnail_key(source)), deadline_s=60, what="thumbnail deleted"
    )
    s3.delete_object(Bucket=bucket, Key=f"thumbnails/{kept}")
    watched = {source, f"thumbnails/{source}", f"thumbnails/{kept}"}
    removal_lines = wait_until(
        lambda: (found := removals(window.read(), watched)) and len(found) >= 3 and found,
        deadline_s=60,
        what="three removal log lines",
    )
    assert sorted((line["key"], line["outcome"]) for line in removal_lines) == sorted(
        [
            (source, "thumbnail_deleted"),
            (f"thumbnails/{source}", "skipped_recursion"),  # the function's own delete
            (f"thumbnails/{kept}", "skipped_recursion"),  # deleted by hand: nothing happens
        ]
    )
    # Nothing regenerated or removed the kept source's files: the source stays, no thumbnail returns.
    assert listed_keys(s3, bucket, key_prefix) == [kept]
    assert listed_keys(s3, bucket, f"thumbnails/{key_prefix}") == []
    assert listed_keys(s3, bucket, f"thumbnails/thumbnails/{key_prefix}") == []


def run_tool(command: str, endpoint: str, *args: str) -> tuple[int, list[dict], str]:
    """Run `python -m ops.<command>` as an operator would; return exit status, stdout JSON lines, stderr."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
    }
    result = subprocess.run(
        [sys.executable, "-m", f"ops.{command}", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, lines, result.stderr


@pytest.fixture
def legacy_bucket(s3):
    """A bucket without notifications, as users have before attaching the function; emptied after."""
    name = f"thumbnailer-legacy-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    yield name
    for key in listed_keys(s3, name, ""):
        s3.delete_object(Bucket=name, Key=key)
    s3.delete_bucket(Bucket=name)


def put_after(s3, bucket: str, key: str, body: bytes, older_key: str) -> None:
    """Put `key` so that its LastModified is strictly later than `older_key`'s (1 s resolution)."""
    older = s3.head_object(Bucket=bucket, Key=older_key)["LastModified"]

    def newer():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return s3.head_object(Bucket=bucket, Key=key)["LastModified"] > older

    wait_until(newer, deadline_s=10, what=f"{key} newer than {older_key}")


def test_backfill_creates_missing_and_stale_thumbnails_only(
    s3, deployed_stack, legacy_bucket, localstack_endpoint
):
    missing = ["a.jpg", "b.png", "dir/c.gif", "dir/d e+f.webp", "z.tiff"]
    for key, name in zip(
        missing,
        ["jpeg-baseline.jpg", "png-rgba.png", "gif-static.gif", "webp-lossy.webp", "tiff-rgb.tiff"],
        strict=True,
    ):
        s3.put_object(Bucket=legacy_bucket, Key=key, Body=image_bytes(name))
    s3.put_object(Bucket=legacy_bucket, Key="broken.jpg", Body=image_bytes("corrupt-truncated.jpg"))
    s3.put_object(Bucket=legacy_bucket, Key="dir/", Body=b"")  # folder marker
    s3.put_object(Bucket=legacy_bucket, Key="fresh.png", Body=image_bytes("png-rgb.png"))
    put_after(s3, legacy_bucket, "thumbnails/fresh.png", b"kept as it is", older_key="fresh.png")
    s3.put_object(Bucket=legacy_bucket, Key="thumbnails/stale.jpg", Body=b"outdated")
    put_after(
        s3, legacy_bucket, "stale.jpg", image_bytes("jpeg-progressive.jpg"), older_key="thumbnails/stale.jpg"
    )
    before = set(listed_keys(s3, legacy_bucket, ""))
    common = ["--bucket", legacy_bucket, "--function", deployed_stack.function_name, "--page-size", "3"]

    code, lines, _ = run_tool("backfill", localstack_endpoint, *common, "--dry-run")

    assert code == 0
    *items, summary = lines
    assert sorted((item["key"], item["action"]) for item in items) == sorted(
        [(key, "missing") for key in [*missing, "broken.jpg"]] + [("stale.jpg", "stale")]
    )
    assert set(listed_keys(s3, legacy_bucket, "")) == before

    code, lines, stderr = run_tool(
        "backfill", localstack_endpoint, *common, "--concurrency", "3", "--progress"
    )

    (summary,) = lines
    assert code == 0, summary
    assert (summary["sources"], summary["missing"], summary["stale"], summary["up_to_date"]) == (8, 6, 1, 1)
    assert summary["skipped_folder_markers"] == 1
    assert summary["outcomes"] == {"created": 6, "rejected": 1}
    assert "] 0/" in stderr  # the progress bar was drawn from the start...
    # ...to the end. 11 objects were there; thumbnails written while the listing still runs count too.
    drawn_last = re.search(r"\[#{30}\] 7/7 listed (\d+) objects", stderr)
    assert drawn_last, stderr[-500:]
    assert 11 <= int(drawn_last.group(1)) <= 11 + 7
    for key in [*missing, "stale.jpg"]:
        assert s3.head_object(Bucket=legacy_bucket, Key=f"thumbnails/{key}")["ContentType"].startswith(
            "image/"
        )
    assert s3.get_object(Bucket=legacy_bucket, Key="thumbnails/fresh.png")["Body"].read() == b"kept as it is"
    assert s3.get_object(Bucket=legacy_bucket, Key="thumbnails/stale.jpg")["Body"].read() != b"outdated"
    assert not listed_keys(s3, legacy_bucket, "thumbnails/broken.jpg")

    code, lines, _ = run_tool("backfill", localstack_endpoint, *common)

    (again,) = lines
    # Only the corrupt file is tried again (it can never have a thumbnail); the rest is up to date.
    assert (code, again["missing"], again["stale"], again["up_to_date"]) == (0, 1, 0, 7)


class FaultyDestination:
    """THUMBNAIL_BUCKET of the deployed function pointed at `name`; the fault is that bucket's absence."""

    def __init__(self, s3, name: str):
        self.s3, self.name = s3, name
        self.sources: list[str] = []  # uploaded by the tests; deleted by the fixture

    def break_writes(self) -> None:
        """Remove the destination bucket: every thumbnail write fails with NoSuchBucket."""
        if self.exists():
            for key in listed_keys(self.s3, self.name, ""):
                self.s3.delete_object(Bucket=self.name, Key=key)
            self.s3.delete_bucket(Bucket=self.name)

    def repair(self) -> None:
        """Create the destination bucket again."""
        if not self.exists():
            self.s3.create_bucket(Bucket=self.name)

    def exists(self) -> bool:
        try:
            self.s3.head_bucket(Bucket=self.name)
        except ClientError:
            return False
        return True

    def thumbnail(self, key: str) -> dict | None:
        try:
            return self.s3.get_object(Bucket=self.name, Key=f"thumbnails/{key}")
        except ClientError:
            return None


def set_function_environment(aws_client, stack, logs, variables: dict) -> None:
    """Update the function's environment and wait until asynchronous invocations use it.

    LocalStack 2026.3 swaps the event poller of the old version for a new one after an update;
    a message the old poller receives during its last long poll (WaitTimeSeconds=2) is dropped
    and comes back only after the visibility timeout (function timeout + 60 s). Probes (an
    s3:TestEvent, which the function ignores) are sent until one sent well after the swap is
    handled: any event after that reaches the new configuration directly.
    """
    lambda_client = aws_client("lambda")
    lambda_client.update_function_configuration(
        FunctionName=stack.function_name, Environment={"Variables": variables}
    )
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=stack.function_name, WaiterConfig=FAST_WAITER
    )
    swapped = time.monotonic()
    window = FunctionLog.from_now(logs, stack.log_group)

    def probe_handled_after_the_swap():
        sent = time.monotonic()
        response = lambda_client.invoke(
            FunctionName=stack.function_name, InvocationType="Event", Payload=TEST_EVENT
        )
        request_id = response["ResponseMetadata"]["RequestId"]
        try:  # handled in well under a second unless it was dropped
            wait_until(lambda: window.read().starts[request_id], deadline_s=5, what="the probe")
        except TimeoutError:
            return False
        return sent - swapped > 3.0

    wait_until(
        probe_handled_after_the_swap, deadline_s=120, what="asynchronous invocations with the new settings"
    )


def wait_until_idle(logs, stack, quiet_s: float = 3.0) -> None:
    """Wait until the function has logged nothing for `quiet_s` (earlier tests' deletions settle)."""

    def quiet():
        window = FunctionLog(logs, stack.log_group, int((time.time() - quiet_s) * 1000)).read()
        return not window.lines and not window.starts

    wait_until(quiet, deadline_s=180, what=f"{quiet_s:.0f} s without invocations")


@pytest.fixture(scope="class")
def faulty_destination(s3, aws_client, deployed_stack, logs):
    """The function writes thumbnails to a bucket of its own, which the tests remove and restore.

    Afterwards: the destination is restored, the sources the tests uploaded are deleted (their
    removal events delete the thumbnails there), and the function gets its settings back.
    """
    lambda_client = aws_client("lambda")
    original = lambda_client.get_function_configuration(FunctionName=deployed_stack.function_name)[
        "Environment"
    ]["Variables"]
    wait_until_idle(logs, deployed_stack)
    fault = FaultyDestination(s3, f"thumbnailer-fault-{uuid.uuid4().hex[:8]}")
    fault.repair()
    set_function_environment(aws_client, deployed_stack, logs, {**original, "THUMBNAIL_BUCKET": fault.name})
    try:
        yield fault
    finally:
        fault.repair()
        window = FunctionLog.from_now(logs, deployed_stack.log_group)
        for key in fault.sources:
            s3.delete_object(Bucket=deployed_stack.bucket, Key=key)
        wait_until(
            lambda: len(removals(window.read(), set(fault.sources))) >= len(fault.sources),
            deadline_s=60,
            what="removal of the fault tests' sources",
        )
        set_function_environment(aws_client, deployed_stack, logs, original)
        fault.break_writes()


def failure_records(sqs, queue_url: str) -> list[tuple[dict, str]]:
    """Every message in the on-failure queue, left visible: (parsed body, receipt handle)."""
    response = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0
    )
    return [
        (json.loads(message["Body"]), message["ReceiptHandle"]) for message in response.get("Messages", [])
    ]


def queue_depth(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


class TestInjectedFault:
    """Thumbnail writes fail (destination bucket missing) for a while, or for longer than the retries."""

    def test_retried_invocation_writes_the_thumbnail_once_the_fault_is_repaired(
        self, s3, deployed_stack, faulty_destination, logs
    ):
        key = f"it-fault-{uuid.uuid4().hex[:8]}/repaired.png"
        faulty_destination.break_writes()
        window = FunctionLog.from_now(logs, deployed_stack.log_group)
        started = time.monotonic()
        s3.put_object(Bucket=deployed_stack.bucket, Key=key, Body=image_bytes("png-rgb.png"))
        faulty_destination.sources.append(key)

        (first_failure, *_) = wait_until(
            lambda: [line for line in window.read().for_keys({key}) if line["outcome"] == "failed"],
            deadline_s=60,
            what="the first failed attempt",
        )
        faulty_destination.repair()
        response = wait_until(
            lambda: faulty_destination.thumbnail(key),
            deadline_s=2 * RETRY_BASE_DELAY_S + 60,
            what="the thumbnail from a retry",
        )
        repaired_s = time.monotonic() - started
        lines = wait_until(
            lambda: (found := window.read().for_keys({key})) and found[-1]["outcome"] == "created" and found,
            deadline_s=30,
            what="the created line",
        )

        assert first_failure["error"] == "NoSuchBucket"
        assert response["ContentType"] == "image/png"
        outcomes = [line["outcome"] for line in lines]
        assert outcomes[-1] == "created", outcomes
        assert set(outcomes[:-1]) == {"failed"}, outcomes
        # One event, retried: the same request id for every attempt, one START line per attempt.
        (request_id,) = {line["request_id"] for line in lines}
        assert window.starts[request_id] == len(lines)
        write_report("fault_repaired", {"attempts": len(lines), "seconds_to_thumbnail": round(repaired_s, 2)})

    def test_exhausted_retries_go_to_the_failure_queue_and_redrive_replays_them(
        self, s3, aws_client, deployed_stack, faulty_destination, logs, localstack_endpoint
    ):
        sqs = aws_client("sqs")
        queue = deployed_stack.failure_queue_url
        assert queue_depth(sqs, queue) == 0, "the on-failure queue must start empty"
        key = f"it-fault-{uuid.uuid4().hex[:8]}/exhausted name+plus.jpg"
        faulty_destination.break_writes()
        window = FunctionLog.from_now(logs, deployed_stack.log_group)
        started = time.monotonic()
        s3.put_object(Bucket=deployed_stack.bucket, Key=key, Body=image_bytes("jpeg-baseline.jpg"))
        faulty_destination.sources.append(key)

        ((record, _),) = wait_until(
            lambda: failure_records(sqs, queue), deadline_s=EXHAUSTED_DEADLINE_S, what="the on-failure record"
        )
        exhausted_s = time.monotonic() - started

        attempts = 1 + MAXIMUM_RETRY_ATTEMPTS
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == attempts
        assert record["requestContext"]["functionArn"].split(":")[6] == deployed_stack.function_name
        (event_record,) = record["requestPayload"]["Records"]
        assert event_record["eventName"].startswith("ObjectCreated:")
        assert event_record["s3"]["bucket"]["name"] == deployed_stack.bucket
        assert unquote_plus(event_record["s3"]["object"]["key"]) == key  # enough to replay it
        assert record["responsePayload"]["errorType"] == "RecordsFailed"
        assert "NoSuchBucket" in record["responsePayload"]["errorMessage"]
        failed = [line for line in window.read().for_keys({key}) if line["outcome"] == "failed"]
        assert len(failed) == attempts
        (request_id,) = {line["request_id"] for line in failed}
        assert request_id == record["requestContext"]["requestId"]
        assert faulty_destination.thumbnail(key) is None

        faulty_destination.repair()
        code, (summary,), stderr = run_tool("redrive", localstack_endpoint, "--queue-url", queue)

        assert code == 0, stderr
        assert (summary["received"], summary["replayed"], summary["left_in_queue"]) == (1, 1, 0)
        assert summary["outcomes"] == {"created": 1}
        thumbnail = faulty_destination.thumbnail(key)
        assert thumbnail["ContentType"] == "image/jpeg"
        assert queue_depth(sqs, queue) == 0

        # Idempotent: a second run finds nothing; the same record delivered again replays to the
        # same bytes and is deleted.
        code, (nothing,), _ = run_tool("redrive", localstack_endpoint, "--queue-url", queue)
        assert (code, nothing["received"]) == (0, 0)
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
        code, (duplicate,), _ = run_tool("redrive", localstack_endpoint, "--queue-url", queue)
        assert (code, duplicate["replayed"], duplicate["duplicates_deleted"]) == (0, 1, 1)
        again = faulty_destination.thumbnail(key)
        assert (
            hashlib.sha256(again["Body"].read()).digest() == hashlib.sha256(thumbnail["Body"].read()).digest()
        )
        assert queue_depth(sqs, queue) == 0
        write_report(
            "fault_exhausted",
            {
                "attempts": attempts,
                "retry_base_delay_s": RETRY_BASE_DELAY_S,
                "seconds_to_failure_record": round(exhausted_s, 2),
                "redrive_seconds": summary["seconds"],
            },
        )
