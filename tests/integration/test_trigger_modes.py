"""The two triggers end to end: S3 notifications (every write, thumbnails' own included, which the
function then skips) and EventBridge (a rule that leaves the thumbnail prefix out)."""

import json
import uuid

import pytest

from harness.fixtures import eventbridge_event, image_bytes
from harness.function_log import FunctionLog
from harness.thumbnails import thumbnail_key, wait_for_thumbnails

pytestmark = pytest.mark.localstack

SETTLE_DEADLINE_S = 60.0


def upload_and_settle(s3, logs: FunctionLog, bucket: str, key: str) -> None:
    """Upload a JPEG to `key` and wait for its thumbnail and for the function's line about it."""
    s3.put_object(Bucket=bucket, Key=key, Body=image_bytes("jpeg-baseline.jpg"))
    wait_for_thumbnails(s3, bucket, [key], deadline_s=SETTLE_DEADLINE_S)
    logs.wait_for(lambda line: line.get("key") == key and line.get("outcome") == "created")


def test_an_upload_gets_its_thumbnail_through_eventbridge(s3, aws_client, eventbridge_stack):
    logs = FunctionLog(aws_client("logs"), eventbridge_stack.log_group)
    key = f"eb-{uuid.uuid4().hex[:8]}/a photo+ü.jpg"  # EventBridge carries keys as they are

    upload_and_settle(s3, logs, eventbridge_stack.bucket, key)

    (line,) = logs.read().for_keys([key])
    assert line["event_name"] == "ObjectCreated:PutObject"
    thumbnail = s3.head_object(Bucket=eventbridge_stack.bucket, Key=thumbnail_key(key))
    assert thumbnail["ContentType"] == "image/jpeg"


def test_the_deployed_rule_leaves_thumbnail_writes_and_other_buckets_out(aws_client, eventbridge_stack):
    events = aws_client("events")
    pattern = events.describe_rule(Name="thumbnailer-local-eventbridge-uploads")["EventPattern"]

    def matches(bucket: str, key: str, detail_type: str = "Object Created") -> bool:
        event = eventbridge_event(bucket, key, detail_type)
        return events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"]

    bucket = eventbridge_stack.bucket
    assert matches(bucket, "photos/cat.jpg")
    assert matches(bucket, "photos/cat.jpg", "Object Deleted")
    assert matches(bucket, "thumbnailsX/cat.jpg")  # only the prefix itself is left out
    assert not matches(bucket, "thumbnails/photos/cat.jpg")
    assert not matches(bucket, "thumbnails/photos/cat.jpg", "Object Deleted")
    assert not matches("someone-elses-bucket", "photos/cat.jpg")


@pytest.mark.parametrize("mode", ["s3", "eventbridge"])
def test_invocations_per_upload(mode, s3, aws_client, deployed_stack, eventbridge_stack):
    """S3 notifications invoke the function twice per upload (the thumbnail's own write, skipped by
    the recursion guard); EventBridge once. A later upload's thumbnail is the barrier: the events of
    the first thumbnail's write were sent before it."""
    deployed = {"s3": deployed_stack, "eventbridge": eventbridge_stack}[mode]
    logs = FunctionLog.from_now(aws_client("logs"), deployed.log_group)
    folder = f"count-{uuid.uuid4().hex[:8]}/"
    first, barrier = folder + "first.jpg", folder + "barrier.jpg"

    upload_and_settle(s3, logs, deployed.bucket, first)
    if mode == "s3":
        logs.wait_for(lambda line: line.get("key") == thumbnail_key(first))
    upload_and_settle(s3, logs, deployed.bucket, barrier)

    outcomes = [line["outcome"] for line in logs.read().for_keys([first, thumbnail_key(first)])]
    assert outcomes == {"s3": ["created", "skipped_recursion"], "eventbridge": ["created"]}[mode]
