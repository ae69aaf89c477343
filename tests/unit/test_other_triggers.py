"""EventBridge's S3 events and S3 Batch Operations tasks, through the real handler against moto's S3."""

import pytest
from botocore.exceptions import ClientError

from harness.fixtures import batch_operations_event, eventbridge_event, image_bytes, load_event
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


@pytest.mark.parametrize(
    ("stored", "in_the_event"),
    [
        ("photos/a b+c.jpg", "photos/a b+c.jpg"),  # as LocalStack and moto send it
        ("photos/a b+c.jpg", "photos/a+b%2Bc.jpg"),  # URL-encoded, as S3 notifications are
        ("photos/x+y%z.jpg", "photos/x+y%z.jpg"),  # a key that merely looks encoded
    ],
)
def test_an_eventbridge_key_is_taken_in_the_spelling_that_exists(s3, handler, stored, in_the_event):
    s3.put_object(Bucket=BUCKET, Key=stored, Body=image_bytes("jpeg-baseline.jpg"))

    created = handler.lambda_handler(eventbridge_event(BUCKET, in_the_event), LambdaContext())
    s3.delete_object(Bucket=BUCKET, Key=stored)
    removed = handler.lambda_handler(
        eventbridge_event(BUCKET, in_the_event, "Object Deleted"), LambdaContext()
    )

    assert created["outcomes"] == {"created": 1}
    assert removed["outcomes"] == {"thumbnail_deleted": 1}
    assert keys(s3) == []  # the thumbnail of the key that existed went with it


def test_an_eventbridge_key_too_long_for_a_thumbnail_is_rejected_before_any_request_about_it(
    handler, monkeypatch
):
    """S3 answers a HeadObject of a key over 1,024 bytes with a bare 400, which would be retried."""
    from thumbnailer.storage import BoundStorage

    asked = []
    etag = BoundStorage.etag
    monkeypatch.setattr(
        BoundStorage, "etag", lambda self, bucket, key: asked.append(key) or etag(self, bucket, key)
    )
    key = "a+b/" + "x" * 1015  # fits S3 as a source key; not with the thumbnail prefix in front

    removed = handler.lambda_handler(eventbridge_event(BUCKET, key, "Object Deleted"), LambdaContext())

    assert removed["outcomes"] == {"rejected": 1}
    assert all(len(asked_key.encode()) <= 1024 for asked_key in asked), asked


def test_an_eventbridge_event_without_a_key_is_logged_as_malformed(handler, log_lines):
    event = load_event("eventbridge-object-created.json")
    del event["detail"]["object"]["key"]

    assert handler.lambda_handler(event, LambdaContext())["outcomes"] == {"malformed": 1}
    assert log_lines()[0]["field"] == "detail.object.key"


def test_batch_tasks_are_answered_one_result_each_with_the_reason(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="photos/a b+c.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    s3.put_object(Bucket=BUCKET, Key="photos/junk.jpg", Body=image_bytes("not-an-image.jpg"))
    event = batch_operations_event(BUCKET, "photos/a b+c.jpg", "photos/junk.jpg", "photos/gone.jpg")

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


def _batch_result(handler, key: str) -> tuple[str, str]:
    (result,) = handler.lambda_handler(batch_operations_event(BUCKET, key), LambdaContext())["results"]
    return result["resultCode"], result["resultString"]


def test_a_thumbnail_made_from_the_current_source_is_left_alone(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="same.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    assert _batch_result(handler, "same.jpg")[1].startswith("created: ")
    written = s3.head_object(Bucket=BUCKET, Key="thumbnails/same.jpg")["LastModified"]

    code, text = _batch_result(handler, "same.jpg")

    assert (code, text.split(":")[0]) == ("Succeeded", "up_to_date")
    assert s3.head_object(Bucket=BUCKET, Key="thumbnails/same.jpg")["LastModified"] == written


@pytest.mark.parametrize("stale_by", ["changed source", "thumbnail without its source's ETag"])
def test_a_stale_thumbnail_is_made_anew(s3, handler, stale_by):
    s3.put_object(Bucket=BUCKET, Key="stale.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    _batch_result(handler, "stale.jpg")
    if stale_by == "changed source":
        s3.put_object(Bucket=BUCKET, Key="stale.jpg", Body=image_bytes("png-rgb.png"))
    else:  # as the function wrote thumbnails before they recorded their source
        s3.put_object(Bucket=BUCKET, Key="thumbnails/stale.jpg", Body=b"old", ContentType="image/jpeg")

    code, text = _batch_result(handler, "stale.jpg")

    assert (code, text.split(":")[0]) == ("Succeeded", "created")
    thumbnail = s3.get_object(Bucket=BUCKET, Key="thumbnails/stale.jpg")
    assert thumbnail["Metadata"]["source-etag"] == s3.head_object(Bucket=BUCKET, Key="stale.jpg")[
        "ETag"
    ].strip('"')


def test_a_transient_failure_is_a_temporary_failure_so_the_job_retries_the_task(s3, handler, inject_fault):
    s3.put_object(Bucket=BUCKET, Key="flaky.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    inject_fault("store", ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject"))

    response = handler.lambda_handler(batch_operations_event(BUCKET, "flaky.jpg"), LambdaContext())

    (result,) = response["results"]
    assert result["resultCode"] == "TemporaryFailure"
    assert "SlowDown" in result["resultString"]


def test_schema_1_0_names_the_bucket_by_its_arn(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="photos/jpeg-baseline.jpg", Body=image_bytes("jpeg-baseline.jpg"))

    response = handler.lambda_handler(load_event("batch-operations-1.0.json"), LambdaContext())

    assert [result["resultCode"] for result in response["results"]] == ["Succeeded"]


def test_a_malformed_task_is_a_permanent_failure_and_the_others_still_run(s3, handler):
    s3.put_object(Bucket=BUCKET, Key="ok.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    event = batch_operations_event(BUCKET, "ok.jpg", "")

    response = handler.lambda_handler(event, LambdaContext())

    assert [result["resultCode"] for result in response["results"]] == ["Succeeded", "PermanentFailure"]
    assert "s3Key" in response["results"][1]["resultString"]


@pytest.mark.parametrize("name", ["batch-operations-1.0.json", "batch-operations-2.0.json"])
def test_batch_keys_are_decoded_as_the_manifest_encodes_them(name):
    batch = parse_event(load_event(name)).batch
    (task,) = batch.tasks

    assert task.target.bucket == "example-uploads"
    assert task.target.key in ("photos/jpeg-baseline.jpg", "photos/name with spaces+plus.jpg")
