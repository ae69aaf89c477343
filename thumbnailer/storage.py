"""S3 access within the invocation's deadline: read a source, its ETag, store or delete a thumbnail.

Every call gets connect and read timeouts and a number of attempts that fit in the time Lambda
leaves the invocation (`context.get_remaining_time_in_millis()`), so a slow S3 ends as a logged
transient failure (DeadlineExceeded, retried by Lambda), never as a Lambda timeout.
"""

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from thumbnailer.core import Thumbnail
from thumbnailer.errors import DeadlineExceeded, PermanentS3Error

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# S3 errors that no retry can fix: the request is refused for what it is (`reason` of the log line).
# Throttling, 5xx, AccessDenied (a policy can be fixed within the retry window) stay transient.
PERMANENT_S3_ERRORS = {
    "KeyTooLongError": "key_too_long",
    "InvalidArgument": "invalid_request",
    "InvalidRequest": "invalid_request",
    "MetadataTooLarge": "invalid_request",
}
# Metadata of a thumbnail: the ETag of the source version it was made from.
SOURCE_ETAG = "source-etag"

# Time kept back, after the last S3 call, to log the outcome and return.
RESERVE_S = 1.0
CONNECT_TIMEOUT_S = 2
MAX_READ_TIMEOUT_S = 20
MIN_READ_TIMEOUT_S = 2
# botocore's standard retry mode sleeps up to 1 s before the 2nd attempt and 2 s before the 3rd.
_BACKOFF_S = {1: 0.0, 2: 1.0, 3: 3.0}
_BODY_CHUNK = 1 << 20


@dataclass(frozen=True)
class CallBudget:
    """Timeouts and attempts of one S3 call: at most attempts x (connect + read) + backoff."""

    read_timeout: int
    max_attempts: int
    connect_timeout: int = CONNECT_TIMEOUT_S


def call_budget(remaining_s: float) -> CallBudget:
    """The most patient call that still ends `RESERVE_S` before the invocation's deadline.

    Raises DeadlineExceeded when not even one short attempt fits.
    """
    usable = remaining_s - RESERVE_S
    for attempts in (3, 2, 1):
        read = min(
            MAX_READ_TIMEOUT_S, math.floor((usable - _BACKOFF_S[attempts]) / attempts - CONNECT_TIMEOUT_S)
        )
        if read >= MIN_READ_TIMEOUT_S:
            return CallBudget(read, attempts)
    raise DeadlineExceeded(f"{remaining_s:.1f} s left in the invocation: too little for another S3 call")


class Deadline:
    """When the invocation must be done by: Lambda's context, or a fixed budget from now."""

    def __init__(self, remaining_ms: Callable[[], int]):
        self._remaining_ms = remaining_ms

    @classmethod
    def from_context(cls, context: object, default_s: float = 900.0) -> "Deadline":
        """Lambda's `get_remaining_time_in_millis`; `default_s` from now without a context."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(remaining) if callable(remaining) else cls.after(default_s)

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        """A deadline `seconds` from now (tools, tests)."""
        end = time.monotonic() + seconds
        return cls(lambda: int((end - time.monotonic()) * 1000))

    def remaining_s(self) -> float:
        """Seconds left."""
        return self._remaining_ms() / 1000


@dataclass(frozen=True)
class SourceObject:
    """A source as read: its ETag and size, and its bytes unless it is over the byte limit."""

    etag: str
    size: int
    data: bytes | None


def make_client(budget: CallBudget = CallBudget(MAX_READ_TIMEOUT_S, 3)):
    """An S3 client with the budget's timeouts and standard-mode retries.

    The endpoint comes from AWS_ENDPOINT_URL when set (LocalStack); boto3 reads it itself.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": budget.max_attempts},  # first try included
        connect_timeout=budget.connect_timeout,
        read_timeout=budget.read_timeout,
    )
    return boto3.client("s3", config=config)


class S3Storage:
    """Reads sources and writes thumbnails; one boto3 client per call budget, made on first use."""

    def __init__(self, client_factory: Callable[[CallBudget], object] = make_client):
        self._client_for = functools.lru_cache(maxsize=16)(client_factory)

    def prepare(self, timeout_s: float = 30.0) -> None:
        """Make, at cold start, the client a fresh invocation of a function with this timeout uses.

        The first client loads boto3's S3 model (about 250 ms); later ones take a few ms, so
        another timeout than serverless.yml's 30 s costs that much once.
        """
        self._client_for(call_budget(timeout_s))

    def within(self, deadline: Deadline) -> "BoundStorage":
        """This storage for one invocation: every call fits in what is left of `deadline`."""
        return BoundStorage(self, deadline)

    def client(self, deadline: Deadline):
        """The client whose timeouts and attempts fit the time left."""
        return self._client_for(call_budget(deadline.remaining_s()))


class BoundStorage:
    """S3 calls of one invocation (the pipeline's Storage)."""

    def __init__(self, storage: S3Storage, deadline: Deadline):
        self._storage, self._deadline = storage, deadline
        self.requests = 0  # S3 requests made so far (each with its retries), for the log lines

    def fetch(self, bucket: str, key: str, max_bytes: int) -> SourceObject | None:
        """The object as it is now (bytes only if at most `max_bytes`), or None if it does not exist."""
        try:
            response = self._call("get_object", Bucket=bucket, Key=key)
        except _Missing:
            return None
        body, size = response["Body"], response.get("ContentLength", 0)
        if size > max_bytes:
            body.close()
            return SourceObject(response["ETag"], size, None)
        chunks = []
        while chunk := body.read(_BODY_CHUNK):  # each read is bounded by the read timeout
            chunks.append(chunk)
            if self._deadline.remaining_s() < RESERVE_S:
                body.close()
                raise DeadlineExceeded(f"reading s3://{bucket}/{key} ({size} bytes) outlasted the invocation")
        return SourceObject(response["ETag"], size, b"".join(chunks))

    def etag(self, bucket: str, key: str) -> str | None:
        """The object's current ETag, or None if it does not exist (needs s3:ListBucket for a 404)."""
        response = self._head(bucket, key)
        return None if response is None else response["ETag"]

    def made_from(self, bucket: str, key: str) -> str | None:
        """The source ETag a stored thumbnail was made from (unquoted), or None if there is none."""
        response = self._head(bucket, key)
        return None if response is None else response.get("Metadata", {}).get(SOURCE_ETAG)

    def _head(self, bucket: str, key: str) -> dict | None:
        try:
            return self._call("head_object", Bucket=bucket, Key=key)
        except _Missing:
            return None

    def store(self, bucket: str, key: str, thumbnail: Thumbnail, source_etag: str) -> None:
        """Write the thumbnail with the MIME type of its bytes and the ETag of its source."""
        self._call(
            "put_object",
            Bucket=bucket,
            Key=key,
            Body=thumbnail.data,
            ContentType=thumbnail.content_type,
            Metadata={SOURCE_ETAG: source_etag.strip('"')},
        )

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object; deleting a key that does not exist succeeds (S3 answers 204)."""
        self._call("delete_object", Bucket=bucket, Key=key)

    def _call(self, operation: str, **parameters) -> dict:
        client = self._storage.client(self._deadline)
        self.requests += 1
        try:
            return getattr(client, operation)(**parameters)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _MISSING_CODES:
                raise _Missing from exc
            if code in PERMANENT_S3_ERRORS:
                where = f"s3://{parameters['Bucket']}/{parameters['Key']}"
                raise PermanentS3Error(PERMANENT_S3_ERRORS[code], f"{operation} {where}: {code}") from exc
            raise


class _Missing(Exception):
    """The object does not exist (404)."""
