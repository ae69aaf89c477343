"""EventBridge's S3 events and S3 Batch Operations tasks, through the real handler against moto's S3."""

import pytest
from botocore.exceptions import ClientError

from harness.fixtures import image_bytes, load_event
from harness.lambda_context import LambdaContext
from tests.unit.conftest import BUCKET
from thumbnailer.events import parse_event


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_an_eventbridge_event_names_its_object_with_the_key_as_it_is():
    (ref,) = parse_event(load_event("eventbridge-object-created.json")).objects

    assert (ref.bucket, ref.key, ref.event_name) == (
        "example-uploads",
        "photos/name with spaces+plus.jpg",
        "ObjectCreated:PutObject",
    )
    assert ref.is_creation


def test_an_eventbridge_lifecycle_expiration_is_a_removal():
    (ref,) = parse_event(load_event("eventbridge-lifecycle-expiration.json")).objects

    assert (ref.event_name, ref.is_removal) == ("LifecycleExpiration:Delete", True)


def test_an_eventbridge_upload_gets_its_thumbnail(s3, handler):
    s3.put_object(
        Bucket=BUCKET, Key="photos/name with spaces+plus.jpg", Body=image_bytes("jpeg-baseline.jpg")
    )

    result = handler.lambda_handler(load_event("eventbridge-object-created.json"), LambdaContext())

    assert result == {"records": 1, "outcomes": {"created": 1}}
    assert "thumbnails/photos/name with spaces+plus.jpg" in keys(s3)


def test_an_eventbridge_event_without_a_key_is_logged_as_malformed(handler, log_lines):
    event = load_event("eventbridge-object-created.json")
    del event["detail"]["object"]["key"]

    assert handler.lambda_handler(event, LambdaContext())["outcomes"] == {"malformed": 1}
    assert log_lines()[0]["field"] == "detail.object.key"


def batch_event(*keys_and_buckets: tuple[str, str]) -> dict:
    event = load_event("batch-operations-2.0.json")
    template = event["tasks"][0]
    event["tasks"] = [
        {**template, "taskId": f"task-{index}", "s3Key": key, "s3Bucket": bucket}
        for index, (key, bucket) in enumerate(keys_and_buckets)
    ]
    return event


def test_batch_tasks_are_answered_one_result_each_with_the_reason(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="photos/a b+c.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    s3.put_object(Bucket=BUCKET, Key="photos/junk.jpg", Body=image_bytes("not-an-image.jpg"))
    event = batch_event(
        ("photos/a+b%2Bc.jpg", BUCKET),  # URL-encoded as in the manifest: 'photos/a b+c.jpg'
        ("photos/junk.jpg", BUCKET),
        ("photos/gone.jpg", BUCKET),
    )

    response = handler.lambda_handler(event, LambdaContext())

    assert response["invocationSchemaVersion"] == "2.0"
    assert response["invocationId"] == event["invocationId"]
    assert response["treatMissingKeysAs"] == "PermanentFailure"
    codes = {
        result["taskId"]: (result["resultCode"], result["resultString"]) for result in response["results"]
    }
    assert codes["task-0"][0] == "Succeeded"
    assert codes["task-1"][0] == "PermanentFailure"
    assert codes["task-1"][1].startswith("rejected: not_an_image: ")
    assert codes["task-2"][0] == "PermanentFailure"
    assert codes["task-2"][1].startswith("skipped_missing: missing: ")
    assert "thumbnails/photos/a b+c.jpg" in keys(s3)


def test_a_transient_failure_is_a_temporary_failure_so_the_job_retries_the_task(s3, handler, inject_fault):
    s3.put_object(Bucket=BUCKET, Key="flaky.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    inject_fault("store", ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject"))

    response = handler.lambda_handler(batch_event(("flaky.jpg", BUCKET)), LambdaContext())

    (result,) = response["results"]
    assert result["resultCode"] == "TemporaryFailure"
    assert "SlowDown" in result["resultString"]


def test_schema_1_0_names_the_bucket_by_its_arn(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="photos/jpeg-baseline.jpg", Body=image_bytes("jpeg-baseline.jpg"))

    response = handler.lambda_handler(load_event("batch-operations-1.0.json"), LambdaContext())

    assert [result["resultCode"] for result in response["results"]] == ["Succeeded"]


def test_a_malformed_task_is_a_permanent_failure_and_the_others_still_run(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="ok.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    event = batch_event(("ok.jpg", BUCKET), ("", BUCKET))

    response = handler.lambda_handler(event, LambdaContext())

    assert [result["resultCode"] for result in response["results"]] == ["Succeeded", "PermanentFailure"]
    assert "s3Key" in response["results"][1]["resultString"]


@pytest.mark.parametrize("name", ["batch-operations-1.0.json", "batch-operations-2.0.json"])
def test_batch_keys_are_decoded_as_the_manifest_encodes_them(name):
    batch = parse_event(load_event(name)).batch
    (task,) = batch.tasks

    assert task.target.bucket == "example-uploads"
    assert task.target.key in ("photos/jpeg-baseline.jpg", "photos/name with spaces+plus.jpg")
