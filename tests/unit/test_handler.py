"""The Lambda handler against moto's S3, driven by events shaped like the ones S3 sends."""

import importlib
import io
import sys

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from PIL import Image

from harness.fixtures import image_bytes, load_event, s3_put_event
from harness.lambda_context import LambdaContext
from tests.unit.conftest import BUCKET
from thumbnailer.errors import RecordsFailed
from thumbnailer.settings import SettingsError
from thumbnailer.storage import S3Storage


def upload(s3, key, fixture, content_type="application/octet-stream"):
    s3.put_object(Bucket=BUCKET, Key=key, Body=image_bytes(fixture), ContentType=content_type)


def thumbnail_of(s3, key):
    response = s3.get_object(Bucket=BUCKET, Key=f"thumbnails/{key}")
    return response, Image.open(io.BytesIO(response["Body"].read()))


def keys(s3):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_upload_gets_a_thumbnail_with_the_true_content_type(s3, handler):
    # The source claims to be a PNG; the thumbnail's type must come from the bytes written.
    upload(s3, "photos/jpeg-baseline.jpg", "jpeg-baseline.jpg", content_type="image/png")

    result = handler.lambda_handler(load_event("put-single.json"), LambdaContext())

    response, image = thumbnail_of(s3, "photos/jpeg-baseline.jpg")
    assert response["ContentType"] == "image/jpeg"
    assert image.format == "JPEG"
    assert max(image.size) == 128
    assert result == {"records": 1, "outcomes": {"created": 1}}


def test_url_encoded_keys_are_decoded(s3, handler):
    # The committed event carries these keys encoded as S3 encodes them ('+' for space, %XX).
    event = load_event("put-url-encoded-key.json")
    for record in event["Records"]:
        record["s3"]["bucket"]["name"] = BUCKET
    upload(s3, "photos/name with spaces+plus.jpg", "name with spaces.jpg")
    upload(s3, "ünïcödé-名前.png", "ünïcödé-名前.png")

    result = handler.lambda_handler(event, LambdaContext())

    assert result == {"records": 2, "outcomes": {"created": 2}}
    assert [k for k in keys(s3) if k.startswith("thumbnails/")] == [
        "thumbnails/photos/name with spaces+plus.jpg",
        "thumbnails/ünïcödé-名前.png",
    ]


def test_every_record_is_processed_and_a_corrupt_one_does_not_stop_the_others(s3, handler, log_lines):
    names = ["jpeg-baseline.jpg", "corrupt-truncated.jpg", "png-rgba.png", "not-an-image.jpg"]
    for name in names:
        upload(s3, f"in/{name}", name)

    result = handler.lambda_handler(s3_put_event(BUCKET, *(f"in/{n}" for n in names)), LambdaContext())

    assert result == {"records": 4, "outcomes": {"created": 2, "rejected": 2}}
    assert [k for k in keys(s3) if k.startswith("thumbnails/")] == [
        "thumbnails/in/jpeg-baseline.jpg",
        "thumbnails/in/png-rgba.png",
    ]
    rejected = {line["key"]: line for line in log_lines() if line["outcome"] == "rejected"}
    assert rejected["in/corrupt-truncated.jpg"]["reason"] == "corrupt"
    assert rejected["in/not-an-image.jpg"]["reason"] == "not_an_image"
    assert rejected["in/corrupt-truncated.jpg"]["level"] == "ERROR"


def test_log_line_carries_bucket_key_sizes_duration_and_outcome(s3, handler, log_lines):
    upload(s3, "photos/jpeg-baseline.jpg", "jpeg-baseline.jpg")
    handler.lambda_handler(load_event("put-single.json"), LambdaContext())

    (line,) = log_lines()
    assert line["bucket"] == BUCKET
    assert line["key"] == "photos/jpeg-baseline.jpg"
    assert line["outcome"] == "created"
    assert line["source_bytes"] == len(image_bytes("jpeg-baseline.jpg"))
    assert 0 < line["thumbnail_bytes"] < line["source_bytes"]
    assert line["duration_ms"] >= 0
    assert line["request_id"] == LambdaContext().aws_request_id
    assert line["thumbnail_key"] == "thumbnails/photos/jpeg-baseline.jpg"
    # GetObject, PutObject, then HeadObject: the re-read that makes the order of events irrelevant.
    assert line["s3_requests"] == 3


def test_a_failing_fast_path_logs_a_warning_and_the_upload_still_gets_its_thumbnail(
    s3, handler, log_lines, monkeypatch
):
    from thumbnailer import core
    from thumbnailer.decoders import FAST_PATHS, FastPath

    def broken(image, data, box):
        raise IndexError("a bug in the optimisation")

    monkeypatch.setattr(core, "FAST_PATHS", tuple(FastPath(p.name, p.formats, broken) for p in FAST_PATHS))
    upload(s3, "photos/png-rgb.png", "png-rgb.png")

    result = handler.lambda_handler(s3_put_event(BUCKET, "photos/png-rgb.png"), LambdaContext())

    assert result["outcomes"] == {"created": 1}
    warning, created = log_lines()
    assert (warning["level"], warning["key"], warning["fast_path"]) == (
        "WARNING",
        "photos/png-rgb.png",
        "png-strips",
    )
    assert warning["error"] == "IndexError: a bug in the optimisation"
    assert created["outcome"] == "created"


def test_recursion_guard_skips_keys_under_the_prefix(s3, handler, log_lines):
    upload(s3, "thumbnails/photos/x.jpg", "jpeg-baseline.jpg")

    result = handler.lambda_handler(load_event("put-thumbnail-key.json"), LambdaContext())

    assert result["outcomes"] == {"skipped_recursion": 1}
    assert not any(k.startswith("thumbnails/thumbnails/") for k in keys(s3))
    assert log_lines()[0]["outcome"] == "skipped_recursion"


def test_s3_test_event_is_ignored(handler, log_lines):
    assert handler.lambda_handler(load_event("s3-test-event.json"), LambdaContext()) == {
        "records": 0,
        "outcomes": {},
    }
    assert log_lines()[0]["outcome"] == "ignored_test_event"


def test_event_without_records_is_logged_and_dropped_naming_the_missing_field(handler, log_lines):
    # The same event comes back on every retry: retrying it would only park it in the queue.
    result = handler.lambda_handler(load_event("malformed-no-records.json"), LambdaContext())

    assert result == {"records": 1, "outcomes": {"malformed": 1}}
    (line,) = log_lines()
    assert (line["outcome"], line["reason"], line["field"], line["where"]) == (
        "malformed",
        "malformed_event",
        "Records",
        "event",
    )
    assert "no 'Records' list" in line["message"]


def test_malformed_record_is_logged_and_the_good_records_are_done(s3, handler, log_lines):
    upload(s3, "a.jpg", "jpeg-baseline.jpg")
    event = s3_put_event(BUCKET, "a.jpg", "b.jpg")
    del event["Records"][1]["s3"]["object"]["key"]

    result = handler.lambda_handler(event, LambdaContext())

    assert result == {"records": 2, "outcomes": {"malformed": 1, "created": 1}}
    assert "thumbnails/a.jpg" in keys(s3)
    malformed = [line for line in log_lines() if line["outcome"] == "malformed"]
    assert [(line["where"], line["field"]) for line in malformed] == [("Records[1]", "s3.object.key")]


def test_deleted_object_is_a_warning_not_a_failure(handler, log_lines):
    result = handler.lambda_handler(s3_put_event(BUCKET, "gone.jpg"), LambdaContext())

    assert result["outcomes"] == {"skipped_missing": 1}
    (line,) = log_lines()
    assert line["level"] == "WARNING"
    assert line["reason"] == "missing"


@pytest.mark.parametrize("function_env", [{"MAX_SOURCE_BYTES": "1000"}])
def test_object_over_the_byte_limit_is_rejected(s3, handler, log_lines):
    upload(s3, "big.jpg", "jpeg-baseline.jpg")

    result = handler.lambda_handler(s3_put_event(BUCKET, "big.jpg"), LambdaContext())

    assert result["outcomes"] == {"rejected": 1}
    assert log_lines()[0]["reason"] == "too_many_bytes"


def test_zero_byte_object_is_rejected(s3, handler, log_lines):
    upload(s3, "empty.jpg", "empty.jpg")
    assert handler.lambda_handler(s3_put_event(BUCKET, "empty.jpg"), LambdaContext())["outcomes"] == {
        "rejected": 1
    }
    assert log_lines()[0]["reason"] == "empty"


@pytest.mark.parametrize(
    "function_env",
    [{"THUMBNAIL_PREFIX": "small/", "THUMBNAIL_MAX_WIDTH": "32", "THUMBNAIL_MAX_HEIGHT": "32"}],
)
def test_settings_come_from_the_environment(s3, handler):
    upload(s3, "a.png", "png-rgb.png")
    handler.lambda_handler(s3_put_event(BUCKET, "a.png"), LambdaContext())
    image = Image.open(io.BytesIO(s3.get_object(Bucket=BUCKET, Key="small/a.png")["Body"].read()))
    assert max(image.size) == 32


@pytest.mark.parametrize("function_env", [{"THUMBNAIL_BUCKET": "thumbs-elsewhere"}])
def test_destination_bucket_can_differ(s3, handler):
    s3.create_bucket(Bucket="thumbs-elsewhere")
    upload(s3, "a.png", "png-rgb.png")
    handler.lambda_handler(s3_put_event(BUCKET, "a.png"), LambdaContext())
    assert s3.head_object(Bucket="thumbs-elsewhere", Key="thumbnails/a.png")["ContentType"] == "image/png"


def test_invalid_setting_fails_at_cold_start(s3, monkeypatch):
    monkeypatch.setenv("THUMBNAIL_JPEG_QUALITY", "best")
    sys.modules.pop("handler", None)
    with pytest.raises(SettingsError, match="THUMBNAIL_JPEG_QUALITY must be an integer"):
        importlib.import_module("handler")
    sys.modules.pop("handler", None)


def test_redelivered_event_writes_identical_bytes(s3, handler):
    upload(s3, "photos/jpeg-baseline.jpg", "jpeg-baseline.jpg")
    event = load_event("put-single.json")
    handler.lambda_handler(event, LambdaContext())
    first = s3.head_object(Bucket=BUCKET, Key="thumbnails/photos/jpeg-baseline.jpg")["ETag"]
    handler.lambda_handler(event, LambdaContext())
    assert s3.head_object(Bucket=BUCKET, Key="thumbnails/photos/jpeg-baseline.jpg")["ETag"] == first


THROTTLED = ClientError(
    {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject"
)


@pytest.mark.parametrize(
    "error",
    [THROTTLED, EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")],
    ids=["5xx", "network"],
)
def test_transient_failure_is_raised_after_the_other_records(s3, handler, inject_fault, log_lines, error):
    inject_fault("store", error)
    for key in ("a.jpg", "flaky.jpg", "c.jpg"):
        upload(s3, key, "jpeg-baseline.jpg")

    with pytest.raises(RecordsFailed, match=r"1 of 3 records failed and will be retried: s3://.*/flaky.jpg"):
        handler.lambda_handler(s3_put_event(BUCKET, "a.jpg", "flaky.jpg", "c.jpg"), LambdaContext())

    assert [k for k in keys(s3) if k.startswith("thumbnails/")] == ["thumbnails/a.jpg", "thumbnails/c.jpg"]
    failed = [line for line in log_lines() if line["outcome"] == "failed"]
    assert [line["key"] for line in failed] == ["flaky.jpg"]


def test_records_that_neither_create_nor_remove_are_ignored(s3, handler):
    # Removals are handled since issue 7 (tests/unit/test_pipeline_deletes.py).
    event = load_event("delete-single.json")
    event["Records"][0]["eventName"] = "ObjectRestore:Completed"
    event["Records"][0]["s3"]["bucket"]["name"] = BUCKET
    assert handler.lambda_handler(event, LambdaContext())["outcomes"] == {"ignored_event": 1}


def test_a_key_whose_thumbnail_key_passes_s3_s_limit_is_rejected_before_any_work(s3, handler, log_lines):
    key = "photos/" + "é" * 505 + ".jpg"  # 1,021 bytes in UTF-8; with 'thumbnails/' 1,032
    upload(s3, key, "jpeg-baseline.jpg")

    result = handler.lambda_handler(s3_put_event(BUCKET, key), LambdaContext())

    assert result["outcomes"] == {"rejected": 1}
    (line,) = log_lines()
    assert (line["reason"], line["error"]) == ("key_too_long", "KeyTooLong")
    assert "source_bytes" not in line  # rejected before the source was read
    assert [k for k in keys(s3) if k.startswith("thumbnails/")] == []


@pytest.mark.parametrize("code", ["KeyTooLongError", "InvalidArgument"])
def test_s3_refusing_the_request_itself_is_permanent_not_retried(s3, handler, monkeypatch, log_lines, code):
    class RefusingWrites:
        def __getattr__(self, operation):
            if operation != "put_object":
                return getattr(s3, operation)

            def refuse(**parameters):
                raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "PutObject")

            return refuse

    monkeypatch.setattr(handler, "STORAGE", S3Storage(lambda budget: RefusingWrites()))
    upload(s3, "a.jpg", "jpeg-baseline.jpg")

    result = handler.lambda_handler(s3_put_event(BUCKET, "a.jpg"), LambdaContext())

    assert result["outcomes"] == {"rejected": 1}
    assert log_lines()[0]["error"] == "PermanentS3Error"


def test_a_photo_replaced_by_a_rejected_file_loses_its_old_thumbnail(s3, handler, log_lines):
    upload(s3, "photos/cat.jpg", "jpeg-baseline.jpg")
    handler.lambda_handler(s3_put_event(BUCKET, "photos/cat.jpg"), LambdaContext())
    assert "thumbnails/photos/cat.jpg" in keys(s3)

    upload(s3, "photos/cat.jpg", "not-an-image.jpg")
    result = handler.lambda_handler(s3_put_event(BUCKET, "photos/cat.jpg"), LambdaContext())

    assert result["outcomes"] == {"rejected": 1}
    assert "thumbnails/photos/cat.jpg" not in keys(s3)
    assert log_lines()[-1]["reason"] == "not_an_image"


@pytest.mark.parametrize(
    "event_name", ["LifecycleExpiration:Delete", "LifecycleExpiration:DeleteMarkerCreated"]
)
def test_a_lifecycle_expiration_takes_the_thumbnail_with_it(s3, handler, event_name):
    upload(s3, "thumbnails/old.jpg", "jpeg-baseline.jpg")
    event = load_event("delete-single.json")
    event["Records"][0].update(eventName=event_name)
    event["Records"][0]["s3"]["bucket"]["name"] = BUCKET
    event["Records"][0]["s3"]["object"]["key"] = "old.jpg"

    result = handler.lambda_handler(event, LambdaContext())

    assert result["outcomes"] == {"thumbnail_deleted": 1}
    assert keys(s3) == []


def test_records_that_cannot_finish_in_time_fail_as_transient_with_a_log_line(s3, handler, log_lines):
    upload(s3, "a.jpg", "jpeg-baseline.jpg")

    with pytest.raises(RecordsFailed, match="DeadlineExceeded"):
        handler.lambda_handler(s3_put_event(BUCKET, "a.jpg"), LambdaContext(timeout_s=3))

    (line,) = log_lines()
    assert (line["outcome"], line["error"]) == ("failed", "DeadlineExceeded")
    assert "too little for another S3 call" in line["message"]
