"""S3 Batch Operations' LambdaInvoke, as LocalStack lacks it: a CSV manifest run against the function.

Reads the manifest from S3, invokes the function once per row (one task per invocation, as Batch
Operations does) with an invocation schema 2.0 event whose key is the manifest's, URL-encoded, and
returns the rows of a completion report: bucket, key as in the manifest, result code and string.
"""

import csv
import io
import json
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskResult:
    """One row of the completion report."""

    bucket: str
    key: str  # as in the manifest (URL-encoded)
    code: str  # Succeeded | TemporaryFailure | PermanentFailure
    text: str


def task_event(bucket: str, key: str, *, task_id: str, job_id: str) -> dict:
    """The invocation schema 2.0 event of one task: `key` as the manifest has it (URL-encoded)."""
    return {
        "invocationSchemaVersion": "2.0",
        "invocationId": uuid.uuid4().hex,
        "job": {"id": job_id, "userArguments": {}},
        "tasks": [{"taskId": task_id, "s3Bucket": bucket, "s3Key": key, "s3VersionId": None}],
    }


def run_job(s3, lambda_client, function: str, manifest_bucket: str, manifest_key: str) -> list[TaskResult]:
    """Invoke `function` for each row of the CSV manifest at s3://manifest_bucket/manifest_key."""
    body = s3.get_object(Bucket=manifest_bucket, Key=manifest_key)["Body"].read().decode()
    job_id = str(uuid.uuid4())
    report = []
    for index, (bucket, key) in enumerate(csv.reader(io.StringIO(body))):
        event = task_event(bucket, key, task_id=f"task-{index}", job_id=job_id)
        response = lambda_client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):  # the whole invocation failed: Batch Operations retries it
            report.append(TaskResult(bucket, key, "TemporaryFailure", json.dumps(payload)[:1024]))
            continue
        (result,) = payload["results"]
        if result["taskId"] != f"task-{index}":
            raise ValueError(f"the function answered another task: {result}")
        report.append(TaskResult(bucket, key, result["resultCode"], result["resultString"]))
    return report
