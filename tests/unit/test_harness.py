"""The harness's shared pieces against moto: waiting for thumbnails, the function's log, the context."""

import json
import sys
import threading
import time

import boto3
import pytest

from harness import demo, interpreters, versions
from harness.fixtures import IMAGES_DIR
from harness.function_log import FunctionLog
from harness.lambda_context import LambdaContext
from harness.thumbnails import thumbnail_key, upload_all, upload_and_wait, wait_for_thumbnails
from harness.waiting import wait_until
from tests.unit.conftest import BUCKET
from thumbnailer.storage import Deadline

GROUP = "/aws/lambda/thumbnailer-test-thumbnail"


def later(seconds: float, action) -> threading.Thread:
    """Run `action` in a thread after `seconds`, as the deployed function would."""
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def test_wait_until_returns_the_first_truthy_result_and_names_what_timed_out():
    calls = iter([0, [], "found"])
    assert wait_until(lambda: next(calls), deadline_s=5, what="x", poll_s=0.01) == "found"

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="the thing: not within 0 s"):
        wait_until(lambda: None, deadline_s=0.2, what="the thing", poll_s=0.05)
    assert time.monotonic() - started < 1


def test_thumbnails_are_awaited_by_exact_key_under_the_common_prefix(s3):
    keys = ["up/a.jpg", "up/b.png"]
    s3.put_object(Bucket=BUCKET, Key=thumbnail_key("up/a.jpg.bak"), Body=b"not the one")
    s3.put_object(Bucket=BUCKET, Key=thumbnail_key("up/a.jpg"), Body=b"12345")
    writer = later(0.3, lambda: s3.put_object(Bucket=BUCKET, Key=thumbnail_key("up/b.png"), Body=b"1"))
    seen = []

    settled = wait_for_thumbnails(
        s3, BUCKET, keys, deadline_s=10, poll_s=0.05, progress=lambda done, total: seen.append((done, total))
    )
    writer.join()

    assert sorted(settled.thumbnails) == keys
    assert settled.thumbnails["up/a.jpg"].size == 5
    assert settled.thumbnails["up/a.jpg"].seen_at <= settled.thumbnails["up/b.png"].seen_at
    assert (settled.rejected, settled.pending) == ({}, set())
    assert seen[0] == (1, 2)
    assert seen[-1] == (2, 2)


def test_a_missing_thumbnail_fails_at_the_deadline_naming_it_or_stays_pending(s3):
    with pytest.raises(TimeoutError, match=r"1 of 1 thumbnails .* within 0 s: never\.jpg"):
        wait_for_thumbnails(s3, BUCKET, ["never.jpg"], deadline_s=0.2, poll_s=0.05)

    settled = wait_for_thumbnails(s3, BUCKET, ["never.jpg"], deadline_s=0.2, poll_s=0.05, require_all=False)
    assert settled.pending == {"never.jpg"}


@pytest.fixture
def function_log(s3):
    """The function's log group in moto's CloudWatch Logs; `write(*messages)` adds events to it."""
    logs = boto3.client("logs", region_name="us-east-1")
    log = FunctionLog(logs, GROUP)

    def write(*messages: str) -> None:
        if not logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]:
            logs.create_log_group(logGroupName=GROUP)
            logs.create_log_stream(logGroupName=GROUP, logStreamName="stream")
        now = int(time.time() * 1000)
        events = [{"timestamp": now + index, "message": message} for index, message in enumerate(messages)]
        logs.put_log_events(logGroupName=GROUP, logStreamName="stream", logEvents=events)

    log.write = write
    return log


def test_the_function_log_reads_json_lines_and_start_lines_and_is_empty_before_any(function_log):
    assert function_log.read().lines == []

    function_log.write(
        "START RequestId: r-1 Version: $LATEST",
        json.dumps({"key": "a.jpg", "outcome": "created", "request_id": "r-1"}),
        "a line that is not JSON",
        "START RequestId: r-1 Version: $LATEST",
    )

    log = function_log.read()
    assert log.lines == [{"key": "a.jpg", "outcome": "created", "request_id": "r-1"}]
    assert log.starts == {"r-1": 2}
    assert log.for_keys({"a.jpg"}) == log.lines
    assert log.for_keys({"b.jpg"}) == []
    assert function_log.wait_for(lambda line: line["key"] == "a.jpg", deadline_s=1) == log.lines
    assert FunctionLog(function_log.client, GROUP, int(time.time() * 1000) + 60_000).read().lines == []


def test_a_logged_rejection_settles_an_upload_that_never_gets_a_thumbnail(s3, function_log):
    function_log.write(json.dumps({"key": "in/junk.jpg", "outcome": "rejected", "reason": "not_an_image"}))
    s3.put_object(Bucket=BUCKET, Key=thumbnail_key("in/photo.jpg"), Body=b"x")

    settled = wait_for_thumbnails(
        s3, BUCKET, ["in/photo.jpg", "in/junk.jpg"], deadline_s=5, log=function_log, poll_s=0.05
    )

    assert list(settled.thumbnails) == ["in/photo.jpg"]
    assert settled.rejected == {"in/junk.jpg": "not_an_image"}


def test_upload_and_wait_times_from_the_upload_to_the_thumbnail(s3):
    def make_thumbnail():
        wait_until(
            lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="p.jpg")["KeyCount"], deadline_s=5, what="p"
        )
        time.sleep(0.2)
        s3.put_object(Bucket=BUCKET, Key=thumbnail_key("p.jpg"), Body=b"t")

    function = later(0, make_thumbnail)
    seconds = upload_and_wait(s3, BUCKET, "p.jpg", b"source", deadline_s=10, poll_s=0.02)
    function.join()

    assert 0.2 <= seconds < 5


def test_upload_all_puts_every_body_and_says_when(s3):
    before = time.monotonic()
    uploaded = upload_all(s3, BUCKET, {f"many/{index}": b"x" * index for index in range(6)}, threads=3)

    assert sorted(uploaded) == [f"many/{index}" for index in range(6)]
    assert all(before <= at <= time.monotonic() for at in uploaded.values())
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="many/")["KeyCount"] == 6


def test_the_lambda_context_is_shaped_like_aws_s_and_counts_down():
    context = LambdaContext(function_name="fn", timeout_s=30)

    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert context.log_group_name == "/aws/lambda/fn"
    assert context.memory_limit_in_mb == 896
    assert context.aws_request_id
    assert 29_000 < context.get_remaining_time_in_millis() <= 30_000
    assert 29 < Deadline.from_context(context).remaining_s() <= 30
    assert LambdaContext(timeout_s=0).get_remaining_time_in_millis() == 0


def test_the_lambda_python_is_this_interpreter_when_its_version_matches(monkeypatch):
    monkeypatch.delenv(interpreters.LAMBDA_PYTHON_ENV, raising=False)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    assert interpreters.lambda_python(f"python{version}") == sys.executable


def test_no_lambda_python_names_the_pyenv_install_and_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv(interpreters.LAMBDA_PYTHON_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(interpreters.PythonNotFound) as missing:
        interpreters.lambda_python("python3.99")

    message = str(missing.value)
    assert f"pyenv install {versions.python_version()}" in message
    assert interpreters.LAMBDA_PYTHON_ENV in message


def test_an_override_of_another_version_is_refused_not_replaced(monkeypatch):
    monkeypatch.setenv(interpreters.LAMBDA_PYTHON_ENV, sys.executable)

    with pytest.raises(interpreters.PythonNotFound, match=rf"tried: {sys.executable} \("):
        interpreters.lambda_python("python3.99")


def test_versions_are_read_where_they_are_pinned():
    assert versions.python_version() == (versions.PYTHON_VERSION_FILE.read_text().strip())
    pins = versions.layer_pins()
    assert {"pillow", "pillow-heif"} <= set(pins)
    assert versions.wheel_name("pillow-heif") == f"pillow_heif-{pins['pillow-heif']}"


def test_the_demo_uploads_waits_for_thumbnails_or_rejections_and_writes_its_contact_sheet(
    s3, function_log, tmp_path, capsys
):
    files = [IMAGES_DIR / "png-rgb.png", IMAGES_DIR / "not-an-image.jpg"]
    uploads = demo.upload(s3, BUCKET, files, "demo-x")
    s3.put_object(
        Bucket=BUCKET, Key=thumbnail_key("demo-x/png-rgb.png"), Body=b"png", ContentType="image/png"
    )
    function_log.write(
        json.dumps({"key": "demo-x/not-an-image.jpg", "outcome": "rejected", "reason": "nope"})
    )

    demo.wait(s3, function_log, BUCKET, uploads)
    demo.download(s3, BUCKET, uploads, tmp_path)
    demo.print_table(uploads)
    page = demo.write_contact_sheet(uploads, tmp_path).read_text()

    assert "2/2 settled" in capsys.readouterr().out
    assert (uploads[0].thumbnail_bytes, uploads[0].content_type, uploads[1].rejected) == (
        3,
        "image/png",
        "nope",
    )
    assert (tmp_path / "thumbnails" / "png-rgb.png").read_bytes() == b"png"
    assert "no thumbnail: nope" in page
