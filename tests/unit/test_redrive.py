"""ops/redrive.py against moto's SQS and S3, replaying through the real handler in-process."""

import json

import pytest

from harness.fixtures import image_bytes, s3_put_event
from harness.lambda_context import LambdaContext
from ops import redrive as redrive_tool
from ops.aws import Invocation
from ops.redrive import UnreadableMessage, parse_message, redrive
from tests.unit.conftest import BUCKET, StubLambda

FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:thumbnailer-test-thumbnail:$LATEST"


def failure_record(event: dict, request_id: str = "req-1") -> str:
    """An on-failure destination record as Lambda (and LocalStack) write it."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-26T19:54:36.703Z",
            "requestContext": {
                "requestId": request_id,
                "functionArn": FUNCTION_ARN,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorType": "RecordsFailed", "errorMessage": "1 of 1 records failed"},
        }
    )


@pytest.fixture
def queue(s3):
    """A moto SQS queue standing in for the on-failure queue (moto's mock is already active)."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="thumbnailer-test-thumbnail-failures")["QueueUrl"]
    return sqs, url


@pytest.fixture
def in_process(handler):
    """An invoker that runs the real handler here, recording (function, event) per call."""
    calls = []

    def invoke(function, event):
        calls.append((function, event))
        try:
            return Invocation(True, outcomes=handler.lambda_handler(event, LambdaContext())["outcomes"])
        except Exception as exc:
            return Invocation(False, error=f"{type(exc).__name__}: {exc}")

    invoke.calls = calls
    return invoke


def attributes(sqs, url) -> tuple[int, int]:
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(found["ApproximateNumberOfMessages"]), int(found["ApproximateNumberOfMessagesNotVisible"])


def test_redrive_replays_deletes_and_is_idempotent(s3, queue, in_process):
    sqs, url = queue
    s3.put_object(Bucket=BUCKET, Key="photos/a b.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    event = s3_put_event(BUCKET, "photos/a b.jpg")
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(event, "req-1"))
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(event, "req-1"))  # delivered twice

    summary = redrive(sqs, url, in_process, wait_seconds=0)

    assert summary.as_dict() | {"seconds": 0} == {
        "received": 2,
        "replayed": 1,
        "duplicates_deleted": 1,
        "failed": 0,
        "unreadable": 0,
        "left_in_queue": 0,
        "outcomes": {"created": 1},
        "failures": [],
        "dry_run": False,
        "seconds": 0,
    }
    assert [function for function, _ in in_process.calls] == [FUNCTION_ARN]
    assert s3.head_object(Bucket=BUCKET, Key="thumbnails/photos/a b.jpg")["ContentType"] == "image/jpeg"
    assert attributes(sqs, url) == (0, 0)
    etag = s3.head_object(Bucket=BUCKET, Key="thumbnails/photos/a b.jpg")["ETag"]

    # The same event replayed again later (a second redrive of a re-sent record): same bytes.
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(event, "req-1"))
    again = redrive(sqs, url, in_process, wait_seconds=0)

    assert (again.replayed, again.left_in_queue) == (1, 0)
    assert s3.head_object(Bucket=BUCKET, Key="thumbnails/photos/a b.jpg")["ETag"] == etag
    assert redrive(sqs, url, in_process, wait_seconds=0).received == 0


def test_failed_and_unreadable_messages_stay_in_the_queue(s3, queue, in_process):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"requestContext": {}}))
    # An event whose replay fails again (the bucket is gone): nothing to delete.
    sqs.send_message(
        QueueUrl=url, MessageBody=failure_record(s3_put_event("no-such-bucket", "a.jpg"), "req-2")
    )

    summary = redrive(sqs, url, in_process, wait_seconds=0, visibility_timeout=300)

    assert (summary.received, summary.unreadable, summary.failed, summary.left_in_queue) == (3, 2, 1, 3)
    assert any("RecordsFailed" in (f.get("replay_error") or "") for f in summary.failures)
    assert attributes(sqs, url) == (0, 3)  # hidden for the visibility timeout, then back


def test_a_replayed_removal_deletes_the_thumbnail(s3, queue, in_process):
    sqs, url = queue
    s3.put_object(Bucket=BUCKET, Key="thumbnails/gone.jpg", Body=b"old thumbnail")
    event = s3_put_event(BUCKET, "gone.jpg")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(event))

    summary = redrive(sqs, url, in_process, wait_seconds=0)

    assert summary.outcomes == {"thumbnail_deleted": 1}
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_dry_run_changes_nothing_and_releases_the_messages(s3, queue, in_process):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=failure_record(s3_put_event(BUCKET, "a.jpg")))

    summary = redrive(sqs, url, in_process, dry_run=True, wait_seconds=0)

    assert (summary.received, summary.replayed, summary.left_in_queue) == (1, 0, 1)
    assert in_process.calls == []
    assert attributes(sqs, url) == (1, 0)


def test_function_override_and_max_messages(s3, queue, in_process):
    sqs, url = queue
    for index in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"{index}.png", Body=image_bytes("png-rgb.png"))
        sqs.send_message(QueueUrl=url, MessageBody=failure_record(s3_put_event(BUCKET, f"{index}.png")))

    summary = redrive(sqs, url, in_process, function="other-function", max_messages=2, wait_seconds=0)

    assert summary.received == 2
    assert {function for function, _ in in_process.calls} == {"other-function"}
    assert attributes(sqs, url) == (1, 0)


def test_parse_message_reads_the_record_and_rejects_anything_else():
    record = parse_message(
        {"MessageId": "m", "ReceiptHandle": "r", "Body": failure_record(s3_put_event(BUCKET, "a+b.jpg"))}
    )

    assert record.describe() == {
        "message_id": "m",
        "request_id": "req-1",
        "condition": "RetriesExhausted",
        "invoke_count": 3,
        "error_type": "RecordsFailed",
        "objects": [{"bucket": BUCKET, "key": "a%2Bb.jpg", "event_name": "ObjectCreated:Put"}],
    }
    with pytest.raises(UnreadableMessage, match="no requestPayload"):
        parse_message({"MessageId": "m", "ReceiptHandle": "r", "Body": "[1, 2]"})


def test_cli_prints_the_summary_and_exits_non_zero_when_messages_stay(s3, queue, capsys, monkeypatch):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    monkeypatch.setattr(redrive_tool, "clients", lambda *services, **options: (sqs, StubLambda({})))

    code = redrive_tool.main(["--queue-url", url, "--wait-seconds", "0"])

    assert code == 1
    assert json.loads(capsys.readouterr().out)["unreadable"] == 1
