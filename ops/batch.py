"""Backfill through S3 Batch Operations: a manifest, a job that invokes the function per object.

Used by `python -m ops.backfill --engine s3-batch`. The manifest is the bucket's newest S3 Inventory
report when it has one (CSV, current versions: no listing from this machine at all), otherwise a
CSV written from a listing that keeps only the sources with a missing or stale thumbnail. The job
invokes the deployed function (LambdaInvoke, invocation schema 2.0) with a few objects per call;
the function answers per object (Succeeded, TemporaryFailure: retried by the job,
PermanentFailure: in the completion report with the reason) and leaves a thumbnail that was made
from the current source alone. The job runs as the stack's BatchOperationsRole and keeps the
listing's manifest (batch/manifests/) and its completion report of failed tasks (batch/reports/)
in the stack's deployment bucket, which notifies nobody: `sls deploy --param batchRole=true`
creates the role, and the stack outputs BatchOperationsRoleArn and BatchWorkBucket name both.
"""

import re
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from botocore.exceptions import ClientError

from ops import aws

CSV_MANIFEST = "S3BatchOperations_CSV_20180820"
INVENTORY_MANIFEST = "S3InventoryReport_CSV_20161130"
MANIFEST_PREFIX = "batch/manifests/"
REPORT_PREFIX = "batch/reports"
INVOCATION_SCHEMA = "2.0"
DEFAULT_PRIORITY = 10
# An inventory run's folder: <destination prefix>/<bucket>/<configuration id>/YYYY-MM-DDTHH-MMZ/
_INVENTORY_RUN = re.compile(r"(\d{4}-\d\d-\d\dT\d\d-\d\dZ)/$")


@dataclass(frozen=True)
class Manifest:
    """A manifest object the job reads: where it is, its ETag, its format, its row count if known."""

    bucket: str
    key: str
    etag: str
    format: str
    objects: int | None = None

    @property
    def url(self) -> str:
        """s3://bucket/key, for people."""
        return f"s3://{self.bucket}/{self.key}"

    def spec(self) -> dict:
        """CreateJob's Manifest.Spec."""
        if self.format == CSV_MANIFEST:
            return {"Format": CSV_MANIFEST, "Fields": ["Bucket", "Key"]}
        return {"Format": self.format}


def manifest_row(bucket: str, key: str) -> str:
    """One CSV manifest row: the key URL-encoded, as Batch Operations requires (the function decodes it)."""
    return f"{bucket},{quote(key, safe='/')}\n"


def write_manifest(s3, source_bucket: str, keys: Iterable[str], bucket: str, key: str) -> Manifest:
    """Upload a CSV manifest naming `keys` of `source_bucket` to s3://bucket/key, streamed through a
    temporary file (a listing of 100 million keys is several GB)."""
    objects = 0
    with tempfile.TemporaryFile() as rows:
        for source_key in keys:
            rows.write(manifest_row(source_bucket, source_key).encode())
            objects += 1
        rows.seek(0)
        s3.upload_fileobj(rows, bucket, key, ExtraArgs={"ContentType": "text/csv"})
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    return Manifest(bucket, key, etag, CSV_MANIFEST, objects)


def latest_inventory(s3, bucket: str) -> Manifest | None:
    """The newest manifest.json of the bucket's enabled CSV inventories of current versions, or None."""
    newest: tuple[str, Manifest] | None = None
    for configuration in _inventory_configurations(s3, bucket):
        destination = configuration["Destination"]["S3BucketDestination"]
        if (
            not configuration.get("IsEnabled")
            or destination.get("Format") != "CSV"  # Batch Operations reads CSV inventories only
            or configuration.get("IncludedObjectVersions") != "Current"  # else: one task per version
        ):
            continue
        destination_bucket = destination["Bucket"].rsplit(":", 1)[-1]  # arn:aws:s3:::name
        folder = "/".join(
            p for p in (destination.get("Prefix", "").strip("/"), bucket, configuration["Id"]) if p
        )
        for run in sorted(_inventory_runs(s3, destination_bucket, folder + "/"), reverse=True):
            key = f"{folder}/{run}/manifest.json"
            try:
                etag = s3.head_object(Bucket=destination_bucket, Key=key)["ETag"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    continue  # a run still being written
                raise
            if newest is None or run > newest[0]:
                newest = (run, Manifest(destination_bucket, key, etag, INVENTORY_MANIFEST))
            break
    return newest[1] if newest else None


def _inventory_configurations(s3, bucket: str) -> Iterable[dict]:
    token = None
    while True:
        page = s3.list_bucket_inventory_configurations(
            Bucket=bucket, **({"ContinuationToken": token} if token else {})
        )
        yield from page.get("InventoryConfigurationList", [])
        if not page.get("IsTruncated"):
            return
        token = page["NextContinuationToken"]


def _inventory_runs(s3, bucket: str, folder: str) -> Iterable[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder, Delimiter="/")
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            match = _INVENTORY_RUN.search(common["Prefix"])
            if match:
                yield match.group(1)


def function_stack_outputs(lambda_client, cloudformation, function_arn: str) -> dict[str, str]:
    """The outputs of the CloudFormation stack that deployed the function, or {} if none did."""
    tags = lambda_client.list_tags(Resource=function_arn).get("Tags", {})
    stack = tags.get("aws:cloudformation:stack-name")
    return aws.stack_outputs(cloudformation, stack) if stack else {}


@dataclass(frozen=True)
class FunctionArn:
    """A function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>) and its parts."""

    arn: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def account_id(self) -> str:
        return self.arn.split(":")[4]


def job_request(
    *,
    function: FunctionArn,
    role_arn: str,
    manifest: Manifest,
    report_bucket: str,
    start: bool,
    description: str,
    priority: int = DEFAULT_PRIORITY,
    token: str | None = None,
) -> dict:
    """The s3control CreateJob parameters: invoke `function` per object of `manifest`, report failures."""
    return {
        "AccountId": function.account_id,
        "ConfirmationRequired": not start,
        "Operation": {
            "LambdaInvoke": {"FunctionArn": function.arn, "InvocationSchemaVersion": INVOCATION_SCHEMA}
        },
        "Report": {
            "Bucket": f"arn:{function.partition}:s3:::{report_bucket}",
            "Prefix": REPORT_PREFIX,
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",  # every object left without a thumbnail, and why
        },
        "ClientRequestToken": token or str(uuid.uuid4()),
        "Manifest": {
            "Spec": manifest.spec(),
            "Location": {
                "ObjectArn": f"arn:{function.partition}:s3:::{manifest.bucket}/{manifest.key}",
                "ETag": manifest.etag,
            },
        },
        "Priority": priority,
        "RoleArn": role_arn,
        "Description": description[:256],
    }


def follow_commands(function: FunctionArn, job_id: str, started: bool) -> dict:
    """The AWS CLI commands that start (if it waits for confirmation) and follow the job."""
    where = f"--account-id {function.account_id} --job-id {job_id} --region {function.region}"
    commands = {
        "follow": f"aws s3control describe-job {where} --query 'Job.[Status,ProgressSummary]'",
        "cancel": f"aws s3control update-job-status {where} --requested-job-status Cancelled",
    }
    if not started:
        commands["start"] = f"aws s3control update-job-status {where} --requested-job-status Ready"
    return commands
