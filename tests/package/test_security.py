"""checkov, a policy scanner, over the CloudFormation template that `sls package` compiled.

Every check that fails must be listed in ACCEPTED with the reason it does not apply (or is a
deliberate trade-off), per resource, and every entry there must still be needed: a fix makes
its entry stale and the test says so. Findings are matched by (check id, resource), so a new
resource, or a known check failing on another resource, is never waved through.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.package.conftest import TEMPLATE

pytestmark = pytest.mark.package

CHECKOV_TIMEOUT_S = 300

DEPLOYMENT_BUCKET = "AWS::S3::Bucket.ServerlessDeploymentBucket"
UPLOAD_BUCKET = "AWS::S3::Bucket.UploadBucket"
FUNCTION = "AWS::Lambda::Function.ThumbnailLambdaFunction"
LOG_GROUP = "AWS::Logs::LogGroup.ThumbnailLogGroup"
FAILURE_QUEUE = "AWS::SQS::Queue.ThumbnailFailureQueue"

ACCEPTED = {
    # Server access logs need a second bucket to receive them (which would need its own logging,
    # versioning, ...). The function logs every object it touches, and account-level CloudTrail
    # data events are the audit trail for S3 requests; that belongs to the account, not this stack.
    ("CKV_AWS_18", UPLOAD_BUCKET): "access logs: CloudTrail data events at account level",
    ("CKV_AWS_18", DEPLOYMENT_BUCKET): "access logs: holds build artifacts only",
    # Versioning the uploads is the data owner's retention decision, not this service's: it turns
    # deletes into delete markers (handled: ObjectRemoved:DeleteMarkerCreated removes the
    # thumbnail too) and keeps every overwritten thumbnail. The deployment bucket holds artifacts
    # rebuilt by `sls package`; the framework prunes old ones, and versioning would keep each
    # pruned artifact forever (the framework offers no lifecycle rule for that bucket).
    ("CKV_AWS_21", UPLOAD_BUCKET): "versioning: the bucket owner's retention decision",
    ("CKV_AWS_21", DEPLOYMENT_BUCKET): "versioning: reproducible artifacts, pruned by the framework",
    # Lambda encrypts environment variables at rest with an AWS-managed key by default. Ours hold
    # sizes, a prefix and a log level; no secret would justify a customer-managed key.
    ("CKV_AWS_173", FUNCTION): "env vars hold no secrets; encrypted at rest by default",
    # checkov looks for DeadLetterConfig only. Failed asynchronous invocations go to the SQS
    # on-failure destination (AWS::Lambda::EventInvokeConfig), which AWS recommends over a DLQ
    # because the record carries the error as well as the event.
    ("CKV_AWS_116", FUNCTION): "on-failure destination (EventInvokeConfig) instead of a DLQ",
    # The function talks to S3 and SQS only, over their public TLS endpoints; a VPC would add
    # NAT or VPC endpoints and slower cold starts and protect nothing.
    ("CKV_AWS_117", FUNCTION): "no private resources to reach; a VPC protects nothing here",
    # Reserved concurrency takes capacity away from every other function in the account and
    # its right value depends on that account; throttled asynchronous events are retried by
    # Lambda for up to MaximumEventAge, so an unreserved function loses no uploads.
    ("CKV_AWS_115", FUNCTION): "concurrency is an account-level decision; throttles are retried",
    # CloudWatch Logs encrypts every log group at rest; a customer-managed key adds a key policy
    # and cost for lines that hold bucket/key names and sizes, never image content.
    ("CKV_AWS_158", LOG_GROUP): "encrypted at rest by CloudWatch Logs; no image content",
    # The queue has SqsManagedSseEnabled: true (SSE-SQS, encrypted at rest); checkov 3.x only
    # recognises KmsMasterKeyId. A KMS key would also need kms:GenerateDataKey for the role.
    ("CKV_AWS_27", FAILURE_QUEUE): "encrypted with SSE-SQS (SqsManagedSseEnabled), not recognised",
}


def _checkov_command() -> list[str]:
    if importlib.util.find_spec("checkov") is None:
        message = "checkov is not installed here (requirements/package.txt has it; run tox -e package)"
        if os.environ.get("THUMBNAILER_PACKAGE_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return [sys.executable, "-m", "checkov.main"]


@pytest.fixture(scope="module")
def checkov_report(template) -> dict:
    """checkov's JSON report for the compiled template (CloudFormation checks only, offline)."""
    result = subprocess.run(
        [
            *_checkov_command(),
            "--file",
            str(TEMPLATE),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",  # no Prisma Cloud guidelines or severities: offline and reproducible
            "--soft-fail",  # the exit status is not the verdict; ACCEPTED below is
        ],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_S,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    (cloudformation,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    return cloudformation


def _findings(report: dict, kind: str) -> set[tuple[str, str]]:
    return {(check["check_id"], check["resource"]) for check in report["results"][kind]}


def test_checkov_ran_the_cloudformation_checks(checkov_report):
    passed = _findings(checkov_report, "passed_checks")

    assert checkov_report["summary"]["parsing_errors"] == 0
    # A few checks that must run and pass; if they vanish, the scan did not see the template.
    assert ("CKV_AWS_19", UPLOAD_BUCKET) in passed  # encrypted at rest
    assert ("CKV_AWS_53", UPLOAD_BUCKET) in passed  # public access blocked
    assert ("CKV_AWS_53", DEPLOYMENT_BUCKET) in passed  # deploymentBucket.blockPublicAccess
    assert ("CKV_AWS_62", "AWS::IAM::Role.IamRoleLambdaExecution") in passed  # no "*:*" admin policy
    assert ("CKV_AWS_363", FUNCTION) in passed  # runtime not deprecated


def test_every_failed_check_is_accepted_with_a_reason(checkov_report):
    failed = _findings(checkov_report, "failed_checks")

    unexplained = sorted(failed - ACCEPTED.keys())
    assert not unexplained, f"checkov findings without a justification in ACCEPTED: {unexplained}"


def test_no_accepted_finding_is_stale(checkov_report):
    failed = _findings(checkov_report, "failed_checks")

    stale = {finding: ACCEPTED[finding] for finding in sorted(ACCEPTED.keys() - failed)}
    assert not stale, f"these checks pass now; remove them from ACCEPTED: {stale}"
