"""The deployed stack in LocalStack: real uploads, the real handler, the real Pillow layer."""

import io
import json
import uuid

import pytest
from PIL import Image

from harness.fixtures import INVALID_IMAGES, VALID_IMAGES, display_size, image_bytes, s3_put_event
from harness.golden import assert_matches_golden

pytestmark = pytest.mark.localstack


def upload(s3, bucket: str, key: str, name: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=image_bytes(name), ContentType="application/octet-stream")


def invoke(deployed_stack, aws_client, event) -> tuple[dict, dict]:
    """Invoke the function synchronously; return the raw response and its decoded payload."""
    response = aws_client("lambda").invoke(
        FunctionName=deployed_stack.function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode(),
    )
    return response, json.loads(response["Payload"].read() or b"null")


@pytest.mark.parametrize("name", sorted(VALID_IMAGES))
def test_upload_gets_a_thumbnail(name, s3, deployed_stack, key_prefix, wait_for_thumbnail):
    key = key_prefix + name
    upload(s3, deployed_stack.bucket, key, name)

    response = wait_for_thumbnail(key)

    written = response["Body"].read()
    thumbnail = Image.open(io.BytesIO(written))
    thumbnail.load()
    width, height = display_size(name)
    scale = min(128 / width, 128 / height, 1.0)
    assert thumbnail.format == VALID_IMAGES[name]
    assert response["ContentType"] == Image.MIME[thumbnail.format]
    assert thumbnail.width <= 128
    assert thumbnail.height <= 128
    assert thumbnail.width == pytest.approx(width * scale, abs=1)
    assert thumbnail.height == pytest.approx(height * scale, abs=1)
    # Made by the Pillow in the deployed layer: a layer that renders differently shows up here.
    assert_matches_golden(name, written)


@pytest.mark.parametrize(("name", "reason"), sorted(INVALID_IMAGES.items()))
def test_bad_upload_is_logged_and_gets_no_thumbnail(
    name, reason, s3, deployed_stack, key_prefix, function_logs
):
    key = key_prefix + name
    upload(s3, deployed_stack.bucket, key, name)

    (line,) = function_logs.wait_for(lambda line: line.get("key") == key)

    assert line["outcome"] == "rejected"
    assert line["reason"] == reason
    assert line["level"] == "ERROR"
    listed = s3.list_objects_v2(Bucket=deployed_stack.bucket, Prefix=f"thumbnails/{key}")
    assert listed.get("KeyCount", 0) == 0


def test_recursion_guard_end_to_end(s3, deployed_stack, key_prefix, function_logs, wait_for_thumbnail):
    names = ["jpeg-baseline.jpg", "png-rgba.png", "gif-animated.gif"]
    for name in names:
        upload(s3, deployed_stack.bucket, key_prefix + name, name)
    for name in names:
        wait_for_thumbnail(key_prefix + name)
    # Each thumbnail write triggers the function once more; those runs must be skipped.
    thumbnail_keys = {f"thumbnails/{key_prefix}{name}" for name in names}
    skipped = function_logs.wait_for(lambda line: line.get("key") in thumbnail_keys, count=len(names))

    assert {line["outcome"] for line in skipped} == {"skipped_recursion"}
    created = [line for line in function_logs.read().lines if line.get("key", "").startswith(key_prefix)]
    assert sorted(line["key"] for line in created) == sorted(key_prefix + name for name in names)
    listed = s3.list_objects_v2(Bucket=deployed_stack.bucket, Prefix="thumbnails/thumbnails/")
    assert listed.get("KeyCount", 0) == 0


def test_malformed_event_is_logged_naming_the_field_and_not_retried(
    deployed_stack, aws_client, function_logs
):
    marker = f"probe-{uuid.uuid4().hex[:8]}"
    response, payload = invoke(deployed_stack, aws_client, {"httpMethod": "GET", "path": "/", marker: 1})

    assert "FunctionError" not in response  # a function error would make Lambda retry it
    assert payload == {"records": 1, "outcomes": {"malformed": 1}}
    (line,) = function_logs.wait_for(lambda line: marker in line.get("message", ""))
    assert (line["outcome"], line["field"], line["level"]) == ("malformed", "Records", "ERROR")


def test_deleted_object_is_a_warning_and_success(deployed_stack, aws_client, key_prefix, function_logs):
    key = key_prefix + "deleted-before-processing.jpg"

    response, payload = invoke(deployed_stack, aws_client, s3_put_event(deployed_stack.bucket, key))

    assert "FunctionError" not in response
    assert payload == {"records": 1, "outcomes": {"skipped_missing": 1}}
    (line,) = function_logs.wait_for(lambda line: line.get("key") == key)
    assert line["level"] == "WARNING"


def test_awkward_keys_and_several_records_in_one_event(
    s3, deployed_stack, aws_client, key_prefix, wait_for_thumbnail
):
    keys = [key_prefix + "name with spaces+plus.jpg", key_prefix + "ünïcödé-名前.png"]
    upload(s3, deployed_stack.bucket, keys[0], "name with spaces.jpg")
    upload(s3, deployed_stack.bucket, keys[1], "ünïcödé-名前.png")
    for key in keys:
        wait_for_thumbnail(key)

    response, payload = invoke(deployed_stack, aws_client, s3_put_event(deployed_stack.bucket, *keys))

    assert "FunctionError" not in response
    assert payload == {"records": 2, "outcomes": {"created": 2}}
