"""Removals (`s3:ObjectRemoved:*`) against moto's S3, and the pipeline's decoder safety net."""

import copy
import struct
import zlib

import pytest
from botocore.exceptions import ClientError

from harness.fixtures import image_bytes, load_event
from harness.lambda_context import LambdaContext
from tests.unit.conftest import BUCKET
from thumbnailer.core import make_thumbnail
from thumbnailer.errors import CorruptImage, RecordsFailed
from thumbnailer.events import parse_event
from thumbnailer.storage import Deadline, S3Storage


def removal_event(*keys: str, event_name: str = "ObjectRemoved:Delete", bucket: str = BUCKET) -> dict:
    """fixtures/events/delete-single.json with its record repeated for each key."""
    template = load_event("delete-single.json")["Records"][0]
    records = []
    for key in keys:
        record = copy.deepcopy(template)
        record["eventName"] = event_name
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["object"]["key"] = key
        records.append(record)
    return {"Records": records}


def put(s3, key: str, fixture: str = "jpeg-baseline.jpg", bucket: str = BUCKET) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=image_bytes(fixture))


def keys(s3, bucket: str = BUCKET) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_removed_source_takes_its_thumbnail_with_it(s3, handler, log_lines):
    put(s3, "photos/cat.jpg")
    put(s3, "thumbnails/photos/cat.jpg")
    put(s3, "thumbnails/photos/dog.jpg")
    s3.delete_object(Bucket=BUCKET, Key="photos/cat.jpg")

    result = handler.lambda_handler(removal_event("photos/cat.jpg"), LambdaContext())

    assert result == {"records": 1, "outcomes": {"thumbnail_deleted": 1}}
    assert keys(s3) == ["thumbnails/photos/dog.jpg"]
    (line,) = log_lines()
    assert line["outcome"] == "thumbnail_deleted"
    assert line["thumbnail_key"] == "thumbnails/photos/cat.jpg"
    assert line["thumbnail_bucket"] == BUCKET
    assert line["level"] == "INFO"


def test_delete_marker_counts_as_a_removal(s3, handler):
    put(s3, "thumbnails/cat.jpg")

    event = removal_event("cat.jpg", event_name="ObjectRemoved:DeleteMarkerCreated")
    result = handler.lambda_handler(event, LambdaContext())

    assert result["outcomes"] == {"thumbnail_deleted": 1}
    assert keys(s3) == []


def test_replayed_removal_is_harmless(s3, handler):
    # The thumbnail is already gone (an earlier delivery removed it, or it never existed).
    event = removal_event("never-had-a-thumbnail.jpg")

    first = handler.lambda_handler(event, LambdaContext())
    second = handler.lambda_handler(event, LambdaContext())

    assert first == second == {"records": 1, "outcomes": {"thumbnail_deleted": 1}}


def test_deleting_a_thumbnail_directly_deletes_nothing(s3, handler, log_lines):
    put(s3, "cat.jpg")
    put(s3, "thumbnails/cat.jpg")
    put(s3, "thumbnails/thumbnails/cat.jpg")  # would be the target if the guard failed
    s3.delete_object(Bucket=BUCKET, Key="thumbnails/cat.jpg")

    result = handler.lambda_handler(removal_event("thumbnails/cat.jpg"), LambdaContext())

    assert result == {"records": 1, "outcomes": {"skipped_recursion": 1}}
    assert keys(s3) == ["cat.jpg", "thumbnails/thumbnails/cat.jpg"]
    assert log_lines()[0]["outcome"] == "skipped_recursion"


def test_source_uploaded_again_keeps_a_thumbnail_of_the_new_version(s3, handler, log_lines):
    # Delete, then re-upload: the re-upload's thumbnail may exist before the delete event runs,
    # or not yet; either way the removal leaves the thumbnail of the source as it is now.
    put(s3, "cat.jpg", "png-rgb.png")
    put(s3, "thumbnails/cat.jpg", "jpeg-baseline.jpg")

    result = handler.lambda_handler(removal_event("cat.jpg"), LambdaContext())

    assert result["outcomes"] == {"kept_source_exists": 1}
    thumbnail = s3.get_object(Bucket=BUCKET, Key="thumbnails/cat.jpg")
    assert thumbnail["ContentType"] == "image/png"
    assert thumbnail["Metadata"]["source-etag"] == s3.head_object(Bucket=BUCKET, Key="cat.jpg")["ETag"].strip(
        '"'
    )
    assert log_lines()[0]["thumbnail_key"] == "thumbnails/cat.jpg"


@pytest.mark.parametrize("function_env", [{"THUMBNAIL_BUCKET": "thumbs-elsewhere"}])
def test_thumbnail_is_removed_from_the_destination_bucket(s3, handler):
    s3.create_bucket(Bucket="thumbs-elsewhere")
    put(s3, "thumbnails/cat.jpg", bucket="thumbs-elsewhere")
    put(s3, "thumbnails/cat.jpg")  # same key in the source bucket: not ours to delete

    handler.lambda_handler(removal_event("cat.jpg"), LambdaContext())

    assert keys(s3, "thumbs-elsewhere") == []
    assert keys(s3) == ["thumbnails/cat.jpg"]


SLOW_DOWN = ClientError(
    {"Error": {"Code": "SlowDown", "Message": "Reduce your request rate."}}, "DeleteObject"
)
# What S3 answers for a missing key when the role lacks s3:ListBucket: not a proof of absence.
FORBIDDEN = ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")


@pytest.mark.parametrize(("error", "on"), [(SLOW_DOWN, "delete"), (FORBIDDEN, "fetch")], ids=["5xx", "403"])
def test_failed_removal_is_retried_after_the_other_records(s3, handler, inject_fault, log_lines, error, on):
    inject_fault(on, error)
    for key in ("a.jpg", "flaky.jpg", "c.jpg"):
        put(s3, f"thumbnails/{key}")

    with pytest.raises(RecordsFailed, match=r"1 of 3 records failed and will be retried: s3://.*/flaky.jpg"):
        handler.lambda_handler(removal_event("a.jpg", "flaky.jpg", "c.jpg"), LambdaContext())

    assert keys(s3) == ["thumbnails/flaky.jpg"]
    failed = [line for line in log_lines() if line["outcome"] == "failed"]
    assert [line["key"] for line in failed] == ["flaky.jpg"]


def test_a_mixed_event_creates_and_removes(s3, handler):
    put(s3, "new.png", "png-rgb.png")
    put(s3, "thumbnails/old.png", "png-rgb.png")
    event = removal_event("old.png")
    created = load_event("put-single.json")["Records"][0]
    created["s3"]["bucket"]["name"] = BUCKET
    created["s3"]["object"]["key"] = "new.png"
    event["Records"].append(created)

    result = handler.lambda_handler(event, LambdaContext())

    assert result == {"records": 2, "outcomes": {"thumbnail_deleted": 1, "created": 1}}
    assert keys(s3) == ["new.png", "thumbnails/new.png"]


def test_other_event_types_are_ignored(s3, handler):
    put(s3, "thumbnails/cat.jpg")
    event = removal_event("cat.jpg", event_name="ObjectRestore:Completed")

    assert handler.lambda_handler(event, LambdaContext())["outcomes"] == {"ignored_event": 1}
    assert keys(s3) == ["thumbnails/cat.jpg"]


def test_removal_records_carry_name_and_sequencer():
    (ref,) = parse_event(load_event("delete-single.json")).objects

    assert ref.is_removal
    assert not ref.is_creation
    assert ref.sequencer == "0066D5A3C2E9A04C11"


def test_storage_etag_tells_missing_from_present(s3):
    storage = S3Storage(lambda budget: s3).within(Deadline.after(60))
    put(s3, "here.jpg")

    assert storage.etag(BUCKET, "here.jpg") == s3.head_object(Bucket=BUCKET, Key="here.jpg")["ETag"]
    assert storage.etag(BUCKET, "gone.jpg") is None


def test_storage_etag_raises_when_s3_cannot_tell():
    class Forbidden:
        def head_object(self, **kwargs):
            raise FORBIDDEN

    with pytest.raises(ClientError, match="Forbidden"):
        S3Storage(lambda budget: Forbidden()).within(Deadline.after(60)).etag(BUCKET, "maybe.jpg")


def _png_with_damaged_idat() -> bytes:
    """png-rgb.png with one IDAT byte flipped and the chunk CRC fixed, so only inflate fails."""
    data = bytearray(image_bytes("png-rgb.png"))
    offset = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[offset : offset + 4])
    start = offset + 8
    data[start + 2] ^= 0xFF
    crc = zlib.crc32(bytes(data[offset + 4 : start + length]))
    data[start + length : start + length + 4] = struct.pack(">I", crc)
    return bytes(data)


def test_damaged_pixel_data_is_a_permanent_error_of_the_core():
    with pytest.raises(CorruptImage) as caught:
        make_thumbnail(_png_with_damaged_idat())
    assert caught.value.reason == "corrupt"


def test_damaged_image_is_rejected_not_retried(s3, handler, log_lines):
    s3.put_object(Bucket=BUCKET, Key="damaged.png", Body=_png_with_damaged_idat())
    event = load_event("put-single.json")
    event["Records"][0]["s3"]["bucket"]["name"] = BUCKET
    event["Records"][0]["s3"]["object"]["key"] = "damaged.png"

    result = handler.lambda_handler(event, LambdaContext())

    assert result["outcomes"] == {"rejected": 1}
    (line,) = log_lines()
    assert line["reason"] == "corrupt"
    assert line["error"] == "CorruptImage"
