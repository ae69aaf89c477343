"""S3 access: fetch a source object within the byte limit, store or delete a thumbnail."""

from botocore.exceptions import ClientError

from thumbnailer.core import Thumbnail
from thumbnailer.errors import EmptySource, SourceMissing, SourceTooLarge

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def make_client():
    """Create the S3 client: standard retry mode with bounded connect and read timeouts.

    The endpoint comes from AWS_ENDPOINT_URL when set (LocalStack); boto3 reads it itself.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=20,
    )
    return boto3.client("s3", config=config)


class S3Storage:
    """Reads sources and writes thumbnails through one boto3 S3 client."""

    def __init__(self, client):
        self._client = client

    def fetch(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """Return the object's bytes; raise SourceMissing or SourceTooLarge (permanent)."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise SourceMissing(f"s3://{bucket}/{key} does not exist (deleted?)") from exc
            raise
        body = response["Body"]
        length = response.get("ContentLength", 0)
        if length > max_bytes:
            body.close()
            raise SourceTooLarge(f"{length} bytes is more than the limit of {max_bytes}")
        if length == 0:
            body.close()
            raise EmptySource("the object is empty (0 bytes)")
        return body.read()

    def exists(self, bucket: str, key: str) -> bool:
        """True if the object exists; False on 404 (needs s3:ListBucket, else S3 answers 403).

        Any other error (403, throttling, network) is raised: the caller cannot tell and retries.
        """
        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return False
            raise
        return True

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object; deleting a key that does not exist succeeds (S3 answers 204)."""
        self._client.delete_object(Bucket=bucket, Key=key)

    def store(self, bucket: str, key: str, thumbnail: Thumbnail) -> None:
        """Write the thumbnail with the MIME type of the bytes actually written."""
        self._client.put_object(
            Bucket=bucket,
            Key=key,
            Body=thumbnail.data,
            ContentType=thumbnail.content_type,
        )
