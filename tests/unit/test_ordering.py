"""Order-independence: every interleaving of two invocations for one key, against moto's S3.

Lambda runs the invocations of one key concurrently and in any order, and uploads and deletes
happen between their S3 calls. Each scenario below lists the user's actions and the invocations
they trigger; `every_schedule` runs every order in which their S3 calls can interleave (an
invocation starts only after the action that triggers it). After each run, and Lambda's retry of
an invocation that failed transiently, the bucket must hold exactly the thumbnail of the source
as it is: none if it is gone or rejected, else the thumbnail of its current version (same bytes,
its ETag in the metadata).
"""

import functools
import io
import itertools
import logging

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from harness.fixtures import image_bytes
from tests.support.interleavings import every_schedule
from thumbnailer import make_thumbnail
from thumbnailer.errors import PermanentError
from thumbnailer.events import S3ObjectRef
from thumbnailer.pipeline import process_object
from thumbnailer.settings import Settings
from thumbnailer.storage import SOURCE_ETAG, Deadline, S3Storage

pytestmark = pytest.mark.interleavings

KEY = "photos/cat.jpg"
THUMBNAIL = "thumbnails/" + KEY
VERSION_1 = image_bytes("small-100x50.jpg")
VERSION_2 = image_bytes("tiny-1x1.png")
REJECTED = image_bytes("corrupt-truncated.jpg")
SETTINGS = Settings()
LOGGER = logging.getLogger("thumbnailer.test_ordering")
_buckets = itertools.count()


class MotoS3:
    """The S3 calls of S3Storage and of the scenarios, answered by moto's S3 backend in process.

    moto's own object model (ETags, overwrites, deletes) without HTTP and botocore: about 10 us a
    call instead of 1.5 ms, which makes thousands of interleavings affordable. The same
    S3Storage code runs on top, and tests/integration/test_ordering_e2e.py races real uploads on
    LocalStack through boto3.
    """

    def __init__(self, backend):
        self._backend = backend

    def create_bucket(self, Bucket):
        self._backend.create_bucket(Bucket, "us-east-1")

    def get_object(self, Bucket, Key):
        found = self._found(Bucket, Key, "GetObject", "NoSuchKey")
        data = found.value
        return {
            "Body": io.BytesIO(data),
            "ContentLength": len(data),
            "ETag": found.etag,
            "Metadata": dict(found.metadata),
        }

    def head_object(self, Bucket, Key):
        return {"ETag": self._found(Bucket, Key, "HeadObject", "404").etag}

    def put_object(self, Bucket, Key, Body, ContentType=None, Metadata=None):
        stored = self._backend.put_object(Bucket, Key, Body)
        stored.set_metadata(dict(Metadata or {}))

    def delete_object(self, Bucket, Key):
        self._backend.delete_object(Bucket, Key)

    def _found(self, bucket, key, operation, code):
        found = self._backend.get_object(bucket, key)
        if found is None:
            raise ClientError({"Error": {"Code": code, "Message": "Not Found"}}, operation)
        return found


@pytest.fixture(scope="module")
def s3():
    """moto's S3 for the module (each run gets a bucket of its own)."""
    with mock_aws():
        yield MotoS3(s3_backends[DEFAULT_ACCOUNT_ID]["aws"])


class SteppedStorage:
    """The real S3 storage over moto, pausing for the scheduler before every call.

    `trusting` (for the test that proves the exploration finds the races): the ETag check answers
    with the ETag of the invocation's last read instead of asking S3 again.
    """

    trusting = False

    def __init__(self, s3, step):
        self._storage = S3Storage(lambda budget: s3).within(Deadline.after(600))
        self._step = step
        self._last_read: str | None = None

    def fetch(self, bucket, key, max_bytes):
        self._step()
        source = self._storage.fetch(bucket, key, max_bytes)
        self._last_read = None if source is None else source.etag
        return source

    def etag(self, bucket, key):
        self._step()
        return self._last_read if self.trusting else self._storage.etag(bucket, key)

    def store(self, bucket, key, thumbnail, source_etag):
        self._step()
        self._storage.store(bucket, key, thumbnail, source_etag)

    def delete(self, bucket, key):
        self._step()
        self._storage.delete(bucket, key)


class World:
    """One run's bucket, the user's actions on it, and the invocations of the function."""

    def __init__(self, s3):
        self.s3 = s3
        self.bucket = f"ordering-{next(_buckets)}"
        s3.create_bucket(Bucket=self.bucket)
        self.invocations: dict[str, S3ObjectRef] = {}

    def upload(self, data: bytes):
        def act(step):
            step()
            self.s3.put_object(Bucket=self.bucket, Key=KEY, Body=data)

        return act

    def delete(self):
        def act(step):
            step()
            self.s3.delete_object(Bucket=self.bucket, Key=KEY)

        return act

    def invocation(self, name: str, event_name: str):
        ref = S3ObjectRef(self.bucket, KEY, event_name)
        self.invocations[name] = ref

        def invoke(step):
            process_object(ref, SteppedStorage(self.s3, step), SETTINGS, LOGGER)

        return invoke

    def retry(self, name: str) -> None:
        """Lambda's asynchronous retry of a failed invocation, run alone."""
        process_object(self.invocations[name], SteppedStorage(self.s3, lambda: None), SETTINGS, LOGGER)

    def set(self, data: bytes | None, thumbnail_of: bytes | None = None) -> "World":
        """The bucket before the scenario: the source (or none) and a thumbnail made earlier."""
        if data is not None:
            self.s3.put_object(Bucket=self.bucket, Key=KEY, Body=data)
        if thumbnail_of is not None:
            self.s3.put_object(Bucket=self.bucket, Key=THUMBNAIL, Body=make_thumbnail(thumbnail_of).data)
        return self

    def problem(self) -> str | None:
        """What is wrong with the final state, or None."""
        source = self._get(KEY)
        thumbnail = self._get(THUMBNAIL)
        expected = None if source is None else _expected_thumbnail(source["Body"].read())
        if expected is None:
            return None if thumbnail is None else "a thumbnail is left for a source that is gone or rejected"
        if thumbnail is None:
            return "the source has no thumbnail"
        if thumbnail["Body"].read() != expected:
            return "the thumbnail is of another version of the source"
        if thumbnail["Metadata"].get(SOURCE_ETAG) != source["ETag"].strip('"'):
            return "the thumbnail does not name the source version it was made from"
        return None

    def _get(self, key: str) -> dict | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None


@functools.cache
def _expected_thumbnail(source: bytes) -> bytes | None:
    try:
        return make_thumbnail(source).data
    except PermanentError:
        return None


CREATED, REMOVED, EXPIRED = "ObjectCreated:Put", "ObjectRemoved:Delete", "LifecycleExpiration:Delete"

# name: (the bucket before, {actor: (what it does, the actor it waits for)}) for one World
SCENARIOS = {
    # a delete between a create's GetObject and PutObject left an orphan thumbnail
    "create races a delete": lambda w: (
        w.set(VERSION_1),
        {
            "create": (w.invocation("create", CREATED), None),
            "user deletes": (w.delete(), None),
            "delete": (w.invocation("delete", REMOVED), "user deletes"),
        },
    ),
    # a lifecycle rule expires the object: the same as a delete
    "create races a lifecycle expiration": lambda w: (
        w.set(VERSION_1),
        {
            "create": (w.invocation("create", CREATED), None),
            "lifecycle expires": (w.delete(), None),
            "expiration": (w.invocation("expiration", EXPIRED), "lifecycle expires"),
        },
    ),
    # a re-upload's create between a delete's check and its DeleteObject left no thumbnail
    "delete races a re-upload": lambda w: (
        w.set(VERSION_1, thumbnail_of=VERSION_1),
        {
            "user deletes": (w.delete(), None),
            "delete": (w.invocation("delete", REMOVED), "user deletes"),
            "user uploads v2": (w.upload(VERSION_2), "user deletes"),
            "create v2": (w.invocation("create v2", CREATED), "user uploads v2"),
        },
    ),
    # the older version's create finishing last overwrote the newer thumbnail
    "two creates of two versions": lambda w: (
        w.set(VERSION_1),
        {
            "create v1": (w.invocation("create v1", CREATED), None),
            "user uploads v2": (w.upload(VERSION_2), None),
            "create v2": (w.invocation("create v2", CREATED), "user uploads v2"),
        },
    ),
    # a photo replaced by a file that is rejected kept the old photo's thumbnail
    "a photo overwritten by a rejected file": lambda w: (
        w.set(VERSION_1),
        {
            "create v1": (w.invocation("create v1", CREATED), None),
            "user uploads junk": (w.upload(REJECTED), None),
            "create junk": (w.invocation("create junk", CREATED), "user uploads junk"),
        },
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_interleaving_ends_with_the_thumbnail_of_the_source_as_it_is(scenario, s3):
    worlds = []

    def fresh():
        world = World(s3)
        worlds.append(world)
        _, actors = SCENARIOS[scenario](world)
        return actors

    runs = 0
    for run in every_schedule(fresh):
        world = worlds[-1]
        for name in run.errors:  # transient failures: Lambda retries the invocation later
            world.retry(name)
        problem = world.problem()
        assert problem is None, f"{problem} after {run.schedule} (errors: {run.errors})"
        runs += 1
    # Guards the exploration itself: every scenario has many interleavings, not just one.
    assert runs >= 10, runs


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_without_the_re_read_some_interleavings_go_wrong(scenario, s3, monkeypatch):
    # Proof that the exploration reaches the races: with an ETag check that always agrees with
    # what the invocation read (no re-read after writing, as before this fix), runs fail.
    monkeypatch.setattr(SteppedStorage, "trusting", True)
    worlds = []

    def fresh():
        world = World(s3)
        worlds.append(world)
        return SCENARIOS[scenario](world)[1]

    for run in every_schedule(fresh):
        for name in run.errors:
            worlds[-1].retry(name)
        if worlds[-1].problem() is not None:
            return
    pytest.fail("every interleaving came out right without the re-read: the exploration misses the races")
