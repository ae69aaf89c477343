"""Parsing S3 notifications: URL-decoded keys, every record, clear errors for other events."""

import pytest

from tests.support.fixtures import load_event
from thumbnailer.errors import MalformedEvent
from thumbnailer.events import parse_event


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
    with pytest.raises(MalformedEvent, match=r"no 'Records'.*expected an S3 event notification"):
        parse_event(load_event("malformed-no-records.json"))


@pytest.mark.parametrize("event", [None, [], "Records", 42])
def test_non_object_events_are_malformed(event):
    with pytest.raises(MalformedEvent, match="expected an S3 event notification"):
        parse_event(event)


def test_record_without_key_is_reported_and_the_others_kept():
    event = load_event("put-multiple-records.json")
    del event["Records"][1]["s3"]["object"]["key"]
    parsed = parse_event(event)
    assert len(parsed.objects) == 2
    assert parsed.malformed == (
        "Records[1]: missing field s3.object.key; expected an S3 event notification: "
        "{'Records': [{'eventSource': 'aws:s3', 's3': {'bucket': {'name': ...}, 'object': {'key': ...}}}]}",
    )


def test_record_without_bucket_name_is_reported():
    event = load_event("put-single.json")
    del event["Records"][0]["s3"]["bucket"]["name"]
    assert parse_event(event).malformed[0].startswith("Records[0]: missing field s3.bucket.name")


def test_committed_malformed_record_fixture():
    parsed = parse_event(load_event("malformed-missing-key.json"))
    assert any("s3.object.key" in message for message in parsed.malformed)
