"""Parsing S3 notifications: URL-decoded keys, every record, clear errors for other events."""

import pytest

from harness.fixtures import load_event
from thumbnailer.events import EXPECTED_SHAPE, Malformed, parse_event


def test_single_put_record():
    parsed = parse_event(load_event("put-single.json"))
    assert [(o.bucket, o.key) for o in parsed.objects] == [("example-uploads", "photos/jpeg-baseline.jpg")]
    assert parsed.objects[0].event_name.startswith("ObjectCreated:")
    assert parsed.malformed == ()


def test_keys_are_url_decoded_like_s3_encodes_them():
    keys = [o.key for o in parse_event(load_event("put-url-encoded-key.json")).objects]
    assert "photos/name with spaces+plus.jpg" in keys
    assert any(key.endswith("ünïcödé-名前.png") for key in keys)


def test_every_record_is_returned():
    assert len(parse_event(load_event("put-multiple-records.json")).objects) == 3


def test_s3_test_event_yields_nothing():
    parsed = parse_event(load_event("s3-test-event.json"))
    assert parsed.is_test_event
    assert parsed.objects == ()


def test_event_without_records_names_what_is_missing_and_what_was_expected():
    parsed = parse_event(load_event("malformed-no-records.json"))

    assert parsed.objects == ()
    [problem] = parsed.malformed
    assert (problem.where, problem.field) == ("event", "Records")
    assert "no 'Records' list" in problem.message
    assert "expected an S3 event notification" in problem.message


@pytest.mark.parametrize("event", [None, [], "Records", 42])
def test_non_object_events_are_malformed_not_raised(event):
    [problem] = parse_event(event).malformed
    assert problem.field == "Records"
    assert "expected an S3 event notification" in problem.message


def test_record_without_key_is_reported_and_the_others_kept():
    event = load_event("put-multiple-records.json")
    del event["Records"][1]["s3"]["object"]["key"]
    parsed = parse_event(event)
    assert len(parsed.objects) == 2
    assert parsed.malformed == (
        Malformed(
            "Records[1]",
            "s3.object.key",
            f"Records[1]: missing field s3.object.key; expected {EXPECTED_SHAPE}",
        ),
    )


def test_record_without_bucket_name_is_reported():
    event = load_event("put-single.json")
    del event["Records"][0]["s3"]["bucket"]["name"]
    [problem] = parse_event(event).malformed
    assert (problem.where, problem.field) == ("Records[0]", "s3.bucket.name")


def test_committed_malformed_record_fixture():
    parsed = parse_event(load_event("malformed-missing-key.json"))
    assert [problem.field for problem in parsed.malformed] == ["s3.object.key"]


@pytest.mark.parametrize(
    ("event_name", "removal"),
    [
        ("ObjectRemoved:Delete", True),
        ("ObjectRemoved:DeleteMarkerCreated", True),
        ("LifecycleExpiration:Delete", True),
        ("LifecycleExpiration:DeleteMarkerCreated", True),
        ("ObjectCreated:Put", False),
        ("ObjectRestore:Completed", False),
    ],
)
def test_lifecycle_expirations_are_removals(event_name, removal):
    event = load_event("delete-single.json")
    event["Records"][0]["eventName"] = event_name
    assert parse_event(event).objects[0].is_removal is removal
