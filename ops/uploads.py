"""Delete a stage's uploads: the one command that does, after saying what it will delete and asking.

    python -m ops.uploads delete --stage prod [--region us-east-1]     # asks first
    python -m ops.uploads delete --bucket my-uploads --yes             # for scripts

`sls remove` keeps the upload bucket (DeletionPolicy: Retain), so removing or replacing the stack
never deletes anybody's photos. This command lists the bucket first (objects, versions and delete
markers, their total size), prints that, and deletes only once you type the bucket's name (or pass
--yes); then it deletes the empty bucket too, unless --keep-bucket. The bucket is found from the
stage's stack output UploadBucketName, or named with --bucket. A bucket the stage attached to
(params.<stage>.existingBucket) is refused unless named with --bucket: it is not the stack's to empty.
boto3 reads credentials, region and AWS_ENDPOINT_URL (LocalStack) as usual.
"""

import argparse
import json
import logging
import sys
from dataclasses import dataclass

from ops.aws import SERVICE, clients, json_logger, stack_outputs
from thumbnailer.logs import log

LOGGER = logging.getLogger("ops.uploads")
BATCH = 1000  # DeleteObjects' maximum


@dataclass
class Contents:
    """What a bucket holds: every object version and delete marker, and their total size."""

    bucket: str
    versions: list[dict]
    total_bytes: int

    def describe(self) -> str:
        """One line for people: how many objects and how much."""
        count = len(self.versions)
        return (
            f"s3://{self.bucket}: {count} objects (versions and delete markers), {self.total_bytes:,} bytes"
        )


def list_contents(s3, bucket: str) -> Contents:
    """Every version and delete marker of `bucket` (all of a versioned bucket's history)."""
    versions, total = [], 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            versions.append({"Key": item["Key"], "VersionId": item.get("VersionId") or "null"})
            total += item.get("Size", 0)
    return Contents(bucket, versions, total)


def delete_contents(s3, contents: Contents, keep_bucket: bool) -> int:
    """Delete every version listed (then the bucket, unless `keep_bucket`); return the count."""
    deleted = 0
    for start in range(0, len(contents.versions), BATCH):
        batch = contents.versions[start : start + BATCH]
        response = s3.delete_objects(Bucket=contents.bucket, Delete={"Objects": batch, "Quiet": True})
        if response.get("Errors"):
            raise RuntimeError(
                f"S3 refused to delete {len(response['Errors'])} objects: {response['Errors'][:3]}"
            )
        deleted += len(batch)
    if not keep_bucket:
        s3.delete_bucket(Bucket=contents.bucket)
    return deleted


def stack_bucket(cloudformation, stage: str) -> str:
    """The upload bucket the stage's stack created (its UploadBucketName output)."""
    outputs = stack_outputs(cloudformation, f"{SERVICE}-{stage}")
    bucket = outputs["UploadBucketName"]
    if outputs.get("UploadBucketCreatedByStack") != "true":
        raise SystemExit(
            f"{bucket} is a bucket the stage {stage} was attached to, not one its stack created: "
            "name it with --bucket if you really mean to delete its contents"
        )
    return bucket


def main(argv: list[str] | None = None, ask=input) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    delete = commands.add_parser("delete", help="delete every upload (and the bucket), after asking")
    where = delete.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help="the stage whose stack created the bucket")
    where.add_argument("--bucket", help="the bucket, by name")
    delete.add_argument("--region", help="the stack's region (default: boto3's)")
    delete.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    delete.add_argument("--keep-bucket", action="store_true", help="empty the bucket but keep it")
    args = parser.parse_args(argv)
    json_logger(LOGGER.name)

    cloudformation, s3 = clients("cloudformation", "s3", region=args.region)
    bucket = args.bucket or stack_bucket(cloudformation, args.stage)
    contents = list_contents(s3, bucket)
    then = "" if args.keep_bucket else ", then the bucket"
    log(LOGGER, logging.INFO, f"will delete {contents.describe()}{then}", bucket=bucket)
    if not args.yes and ask(f"Type the bucket's name ({bucket}) to delete all of it: ").strip() != bucket:
        log(LOGGER, logging.INFO, "nothing deleted", bucket=bucket)
        return 1
    deleted = delete_contents(s3, contents, args.keep_bucket)
    print(json.dumps({"bucket": bucket, "deleted_objects": deleted, "bucket_deleted": not args.keep_bucket}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
