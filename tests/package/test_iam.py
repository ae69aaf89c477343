"""Every S3 call the function makes, checked against the IAM role compiled from serverless.yml.

LocalStack does not enforce IAM, so a role that forgets a permission passes every local test
and fails on AWS. Here the role's statements are taken from the template `sls package` compiled,
resolved as CloudFormation resolves them, and put on a role in moto with IAM enforcement on
(`set_initial_no_auth_action_count`): each request is evaluated by moto's policy engine against
the credentials of that role, assumed through STS. The real pipeline then runs the paths the
function takes (create, overwrite, reject, delete, a missing source, another thumbnail bucket;
backfill --local runs the same pipeline), and every denied call is reported with its action and
resource.

One behaviour of AWS moto lacks is added: without s3:ListBucket, S3 answers a missing key with
403 instead of 404. That rule is applied to moto's 404s using moto's own evaluation of the role's
policy for s3:ListBucket on the bucket.
"""

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from moto.iam.access_control import IAMPolicy, PermissionResult

from harness.fixtures import batch_operations_event, eventbridge_event, image_bytes, s3_put_event
from tests.support.cloudformation import Account, Resolver, as_list
from thumbnailer.pipeline import handle_event
from thumbnailer.settings import Settings
from thumbnailer.storage import Deadline, S3Storage

pytestmark = pytest.mark.package

ACCOUNT = Account()
ROLE_LOGICAL_ID = "IamRoleLambdaExecution"
# The calls before IAM enforcement starts: creating the administrator the test acts as.
SETUP_CALLS = 3
ACTIONS = {  # the IAM action each S3 operation the storage uses is authorised by
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "put_object": "s3:PutObject",
    "delete_object": "s3:DeleteObject",
}
LOGGER = logging.getLogger("thumbnailer.test_iam")


@dataclass
class Denied:
    """One call IAM refused: the operation, the action it needs and the resource."""

    operation: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.action} on {self.resource} denied"


@dataclass
class RoleClient:
    """The function's S3 client: the role's credentials, its denials recorded."""

    client: object
    policy: IAMPolicy
    denied: list[Denied] = field(default_factory=list)

    def __getattr__(self, operation):
        call = getattr(self.client, operation)
        if operation not in ACTIONS:
            return call

        def checked(**parameters):
            bucket, key = parameters["Bucket"], parameters["Key"]
            resource = f"arn:{ACCOUNT.partition}:s3:::{bucket}/{key}"
            try:
                return call(**parameters)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code in ("AccessDenied", "403"):
                    self.denied.append(Denied(operation, ACTIONS[operation], resource))
                elif code in ("NoSuchKey", "404") and not self._may_list(bucket):
                    self.denied.append(
                        Denied(operation, "s3:ListBucket (404 becomes 403)", f"arn:aws:s3:::{bucket}")
                    )
                    raise ClientError(
                        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation
                    ) from exc
                raise

        return checked

    def _may_list(self, bucket: str) -> bool:
        decision = self.policy.is_action_permitted("s3:ListBucket", f"arn:{ACCOUNT.partition}:s3:::{bucket}")
        return decision == PermissionResult.PERMITTED


def role_policy(template: dict, edit: Callable[[list], list] = lambda statements: statements) -> dict:
    """The role's policy document as deployed in ACCOUNT, after `edit` of its statements."""
    policies = template["Resources"][ROLE_LOGICAL_ID]["Properties"]["Policies"]
    statements = Resolver(template, ACCOUNT).resolve(
        copy.deepcopy(policies[0]["PolicyDocument"]["Statement"])
    )
    return {"Version": "2012-10-17", "Statement": edit(statements)}


def without(action: str) -> Callable[[list], list]:
    """A statements edit: `action` taken out of every statement (and empty statements dropped)."""

    def edit(statements: list) -> list:
        kept = []
        for statement in statements:
            actions = [a for a in as_list(statement["Action"]) if a != action]
            if actions:
                kept.append({**statement, "Action": actions})
        return kept

    return edit


class EnforcedAws:
    """moto with IAM enforced: an administrator for the setup, the function's role for its calls."""

    def __init__(self, policy: dict, template: dict):
        self.template = template
        iam = boto3.client("iam", region_name=ACCOUNT.region)
        iam.create_user(UserName="administrator")
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName="administrator", PolicyName="everything", PolicyDocument=json.dumps(everything)
        )
        key = iam.create_access_key(UserName="administrator")["AccessKey"]
        self.admin = boto3.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=ACCOUNT.region,
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
        role = self.admin.client("iam").create_role(
            RoleName="function-role", AssumeRolePolicyDocument=json.dumps(trust)
        )
        self.admin.client("iam").put_role_policy(
            RoleName="function-role", PolicyName="function", PolicyDocument=json.dumps(policy)
        )
        credentials = self.admin.client("sts").assume_role(
            RoleArn=role["Role"]["Arn"], RoleSessionName="function"
        )["Credentials"]
        function_s3 = boto3.client(
            "s3",
            region_name=ACCOUNT.region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        self.role = RoleClient(function_s3, IAMPolicy(json.dumps(policy)))
        self.s3 = self.admin.client("s3")
        resolver = Resolver(template, ACCOUNT)
        self.bucket = resolver.resolve(template["Outputs"]["UploadBucketName"]["Value"])
        self.s3.create_bucket(Bucket=self.bucket)
        variables = template["Resources"]["ThumbnailLambdaFunction"]["Properties"]["Environment"]["Variables"]
        self.settings = Settings.from_env(variables)
        if self.settings.bucket:
            self.s3.create_bucket(Bucket=self.settings.bucket)

    def invoke(self, event: dict) -> dict:
        """The function's pipeline on `event`, with the role's S3 client; its result or its error."""
        storage = S3Storage(lambda budget: self.role).within(Deadline.after(60))
        try:
            return handle_event(event, storage, self.settings, LOGGER)
        except Exception as exc:  # RecordsFailed: what the denials below explain
            return {"error": f"{type(exc).__name__}: {exc}"}


@pytest.fixture
def enforced(template):
    """Callable: run `scenario(aws)` in moto with IAM enforced for the role of `template`
    (default: the main package) after `edit` of its statements; returns the calls IAM denied."""

    def run(scenario, *, edit=lambda statements: statements, of=None) -> list[Denied]:
        compiled = of or template

        @set_initial_no_auth_action_count(SETUP_CALLS)
        def inside_moto():
            aws = EnforcedAws(role_policy(compiled, edit), compiled)
            scenario(aws)
            return aws.role.denied

        with mock_aws():
            return inside_moto()

    return run


def every_path(aws: EnforcedAws) -> None:
    """Create, overwrite, reject, delete and miss a source: every S3 call the pipeline makes."""
    bucket, s3 = aws.bucket, aws.s3
    s3.put_object(Bucket=bucket, Key="photos/cat.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    assert aws.invoke(s3_put_event(bucket, "photos/cat.jpg"))["outcomes"] == {"created": 1}
    s3.put_object(Bucket=bucket, Key="photos/cat.jpg", Body=image_bytes("png-rgb.png"))
    assert aws.invoke(s3_put_event(bucket, "photos/cat.jpg"))["outcomes"] == {"created": 1}
    s3.put_object(Bucket=bucket, Key="photos/cat.jpg", Body=image_bytes("not-an-image.jpg"))
    assert aws.invoke(s3_put_event(bucket, "photos/cat.jpg"))["outcomes"] == {"rejected": 1}
    s3.delete_object(Bucket=bucket, Key="photos/cat.jpg")
    removal = s3_put_event(bucket, "photos/cat.jpg")
    removal["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert aws.invoke(removal)["outcomes"] == {"thumbnail_deleted": 1}
    assert aws.invoke(s3_put_event(bucket, "photos/never-there.jpg"))["outcomes"] == {"skipped_missing": 1}
    s3.put_object(Bucket=bucket, Key="photos/dog.jpg", Body=image_bytes("jpeg-baseline.jpg"))
    for expected in ("created", "up_to_date"):  # a backfill job's task: made, then left alone
        (result,) = aws.invoke(batch_operations_event(bucket, "photos/dog.jpg"))["results"]
        assert result["resultString"].startswith(f"{expected}: "), result


def test_the_role_allows_every_call_the_function_makes(enforced):
    denied = enforced(every_path)

    assert [str(call) for call in denied] == []


def test_a_role_without_list_bucket_turns_a_missing_source_into_a_retried_failure(enforced):
    def missing_source(aws: EnforcedAws) -> None:
        assert "RecordsFailed" in aws.invoke(s3_put_event(aws.bucket, "photos/never-there.jpg"))["error"]

    denied = enforced(missing_source, edit=without("s3:ListBucket"))

    assert [call.action for call in denied] == ["s3:ListBucket (404 becomes 403)"]


def test_a_role_without_delete_object_cannot_take_a_thumbnail_away(enforced):
    def delete(aws: EnforcedAws) -> None:
        aws.s3.put_object(Bucket=aws.bucket, Key="thumbnails/old.jpg", Body=b"an old thumbnail")
        removal = s3_put_event(aws.bucket, "old.jpg")
        removal["Records"][0]["eventName"] = "ObjectRemoved:Delete"
        assert "RecordsFailed" in aws.invoke(removal)["error"]

    denied = enforced(delete, edit=without("s3:DeleteObject"))

    assert [(call.action, call.resource) for call in denied] == [
        ("s3:DeleteObject", "arn:aws:s3:::thumbnailer-prod-us-east-1-123456789012/thumbnails/old.jpg")
    ]


def test_a_separate_thumbnail_bucket_is_writable_because_the_role_follows_the_setting(enforced, packaged):
    other = packaged("--stage", "prod", "--param", "thumbnailBucket=company-thumbnails")["template"]

    def create(aws: EnforcedAws) -> None:
        aws.s3.put_object(Bucket=aws.bucket, Key="cat.jpg", Body=image_bytes("jpeg-baseline.jpg"))
        assert aws.invoke(s3_put_event(aws.bucket, "cat.jpg"))["outcomes"] == {"created": 1}
        assert (
            aws.s3.head_object(Bucket="company-thumbnails", Key="thumbnails/cat.jpg")["ContentType"]
            == "image/jpeg"
        )

    assert enforced(create, of=other) == []


def test_a_separate_thumbnail_bucket_is_readable_where_the_function_checks_a_thumbnail(enforced, packaged):
    """A Batch Operations task asks whether the thumbnail is current, and an EventBridge removal
    whether a thumbnail exists under the event's spelling: both HEAD the thumbnail bucket."""
    other = packaged("--stage", "prod", "--param", "thumbnailBucket=company-thumbnails")["template"]

    def check_thumbnails(aws: EnforcedAws) -> None:
        aws.s3.put_object(Bucket=aws.bucket, Key="cat dog.jpg", Body=image_bytes("jpeg-baseline.jpg"))
        assert aws.invoke(s3_put_event(aws.bucket, "cat dog.jpg"))["outcomes"] == {"created": 1}
        (result,) = aws.invoke(batch_operations_event(aws.bucket, "cat dog.jpg"))["results"]
        assert result["resultCode"] == "Succeeded", result
        assert result["resultString"].startswith("up_to_date: "), result
        aws.s3.delete_object(Bucket=aws.bucket, Key="cat dog.jpg")
        # Spelt "cat+dog.jpg": only the thumbnail bucket can tell which key was meant.
        removal = eventbridge_event(aws.bucket, "cat+dog.jpg", "Object Deleted")
        assert aws.invoke(removal)["outcomes"] == {"thumbnail_deleted": 1}
        assert aws.s3.list_objects_v2(Bucket="company-thumbnails").get("KeyCount") == 0

    assert enforced(check_thumbnails, of=other) == []


def test_the_old_role_that_ignored_the_setting_is_caught(enforced, packaged, template):
    # THUMBNAIL_BUCKET set, but the role of the main package: what the README once promised.
    other = packaged("--stage", "prod", "--param", "thumbnailBucket=company-thumbnails")["template"]
    mixed = copy.deepcopy(template)
    mixed["Resources"]["ThumbnailLambdaFunction"] = other["Resources"]["ThumbnailLambdaFunction"]

    def create(aws: EnforcedAws) -> None:
        aws.s3.put_object(Bucket=aws.bucket, Key="cat.jpg", Body=image_bytes("jpeg-baseline.jpg"))
        assert "RecordsFailed" in aws.invoke(s3_put_event(aws.bucket, "cat.jpg"))["error"]

    denied = enforced(create, of=mixed)

    assert ("s3:PutObject", "arn:aws:s3:::company-thumbnails/thumbnails/cat.jpg") in [
        (call.action, call.resource) for call in denied
    ]


BATCH_ROLE_CHECKS = [  # (action, resource: {work} is the deployment bucket, {uploads} the upload bucket)
    ("s3:GetObject", "{work}/batch/manifests/20261130T120000Z-1a2b3c4d.csv", True),
    ("s3:PutObject", "{work}/batch/reports/job-1/results/1.csv", True),
    ("lambda:InvokeFunction", "function:thumbnailer-prod-thumbnail", True),
    ("s3:GetObject", "{work}/serverless/thumbnailer/prod/code.zip", False),
    ("s3:DeleteObject", "{work}/batch/manifests/m.csv", False),
    ("s3:GetObject", "{uploads}/photos/cat.jpg", False),
    ("s3:PutObject", "{uploads}/thumbnails/cat.jpg", False),
    ("lambda:InvokeFunction", "function:someone-else", False),
    ("s3:GetObject", "company-inventory/uploads/data/1.csv.gz", False),
]


@pytest.mark.parametrize(("action", "resource", "allowed"), BATCH_ROLE_CHECKS)
def test_the_batch_role_reads_manifests_writes_reports_and_invokes_the_function_only(
    packaged, action, resource, allowed
):
    template = packaged("--stage", "prod", "--param", "batchRole=true")["template"]
    resolver = Resolver(template, ACCOUNT)
    role = template["Resources"]["BatchOperationsRole"]["Properties"]
    policy = IAMPolicy(json.dumps(resolver.resolve(role["Policies"][0]["PolicyDocument"])))
    buckets = {
        "uploads": resolver.resolve(template["Outputs"]["UploadBucketName"]["Value"]),
        "work": resolver.resolve(template["Outputs"]["BatchWorkBucket"]["Value"]),
    }
    if action.startswith("lambda:"):
        arn = f"arn:{ACCOUNT.partition}:lambda:{ACCOUNT.region}:{ACCOUNT.account_id}:{resource}"
    else:
        arn = f"arn:{ACCOUNT.partition}:s3:::{resource.format(**buckets)}"

    permitted = policy.is_action_permitted(action, arn) == PermissionResult.PERMITTED

    assert permitted is allowed, (action, arn)
