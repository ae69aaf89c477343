"""S3 access: call budgets that fit the invocation's time, and which S3 errors are permanent."""

import pytest
from botocore.exceptions import ClientError

from harness.fixtures import image_bytes
from tests.unit.conftest import BUCKET
from thumbnailer import make_thumbnail
from thumbnailer.errors import DeadlineExceeded, PermanentS3Error
from thumbnailer.storage import (
    RESERVE_S,
    SOURCE_ETAG,
    CallBudget,
    Deadline,
    S3Storage,
    call_budget,
    make_client,
)


@pytest.mark.parametrize("remaining_s", [900, 30, 20, 12, 8, 5])
def test_a_call_and_its_retries_end_before_the_invocation_does(remaining_s):
    budget = call_budget(remaining_s)
    # Standard retry mode sleeps at most 1 s before the 2nd attempt and 2 s before the 3rd.
    backoff = {1: 0, 2: 1, 3: 3}[budget.max_attempts]
    worst_case = budget.max_attempts * (budget.connect_timeout + budget.read_timeout) + backoff

    assert worst_case <= remaining_s - RESERVE_S
    assert budget.read_timeout >= 2


def test_a_long_invocation_gets_the_most_patient_calls():
    assert call_budget(900) == CallBudget(read_timeout=20, max_attempts=3)
    assert call_budget(30) == CallBudget(read_timeout=6, max_attempts=3)


def test_no_call_starts_when_too_little_time_is_left():
    with pytest.raises(DeadlineExceeded, match="too little for another S3 call"):
        call_budget(4)


def test_the_client_gets_the_budget_s_timeouts_and_attempts():
    config = make_client(CallBudget(read_timeout=6, max_attempts=2)).meta.config

    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (2, 6, 2)
    assert config.retries["mode"] == "standard"


def test_a_client_is_made_once_per_budget():
    made = []
    storage = S3Storage(lambda budget: made.append(budget) or object())

    for _ in range(3):
        storage.client(Deadline.after(30))
    storage.client(Deadline.after(900))

    assert made == [call_budget(30), call_budget(900)]


class SlowBody:
    """A response body that takes `seconds` per read, like a trickling connection."""

    def __init__(self, clock, seconds, size):
        self._clock, self._seconds, self._left = clock, seconds, size

    def read(self, amount):
        self._clock[0] -= self._seconds
        chunk = min(amount, self._left)
        self._left -= chunk
        return b"x" * chunk

    def close(self):
        pass


def test_reading_a_trickling_body_stops_before_the_deadline():
    clock = [30.0]  # seconds left in the invocation

    class Client:
        def get_object(self, Bucket, Key):
            return {"Body": SlowBody(clock, 5, 40 << 20), "ContentLength": 40 << 20, "ETag": '"e"'}

    storage = S3Storage(lambda budget: Client()).within(Deadline(lambda: int(clock[0] * 1000)))

    with pytest.raises(DeadlineExceeded, match="outlasted the invocation"):
        storage.fetch(BUCKET, "big.jpg", 50 << 20)
    assert clock[0] >= 0


class Refusing:
    """An S3 client that answers every call with one error code."""

    def __init__(self, code):
        self.code = code

    def __getattr__(self, operation):
        def refuse(**parameters):
            raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, operation)

        return refuse


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("KeyTooLongError", "key_too_long"),
        ("InvalidArgument", "invalid_request"),
        ("InvalidRequest", "invalid_request"),
    ],
)
def test_errors_no_retry_can_fix_are_permanent(code, reason):
    storage = S3Storage(lambda budget: Refusing(code)).within(Deadline.after(30))

    with pytest.raises(PermanentS3Error) as raised:
        storage.delete(BUCKET, "thumbnails/a.jpg")
    assert raised.value.reason == reason


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "AccessDenied", "NoSuchBucket"])
def test_other_errors_stay_transient(code):
    storage = S3Storage(lambda budget: Refusing(code)).within(Deadline.after(30))

    with pytest.raises(ClientError):
        storage.delete(BUCKET, "thumbnails/a.jpg")


def test_a_thumbnail_names_the_version_of_its_source(s3):

    storage = S3Storage(lambda budget: s3).within(Deadline.after(30))
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=image_bytes("small-100x50.jpg"))
    source = storage.fetch(BUCKET, "a.jpg", 1 << 20)

    storage.store(BUCKET, "thumbnails/a.jpg", make_thumbnail(source.data), source.etag)

    written = s3.head_object(Bucket=BUCKET, Key="thumbnails/a.jpg")
    assert written["Metadata"][SOURCE_ETAG] == s3.head_object(Bucket=BUCKET, Key="a.jpg")["ETag"].strip('"')
    assert written["ContentType"] == "image/jpeg"
