"""Checks on the CloudFormation template that `sls package` compiled from serverless.yml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.package.conftest import (
    BUCKET_LOGICAL_ID,
    FUNCTION_LOGICAL_ID,
    LAYER_LOGICAL_ID,
    QUEUE_LOGICAL_ID,
    TEMPLATE,
)
from tests.support.cloudformation import grants

pytestmark = pytest.mark.package


def _s3_statements(role_statements):
    return [s for s in role_statements if any(a.lower().startswith("s3:") for a in s["Action"])]


def test_s3_statements_name_actions_and_resources_without_wildcards(role_statements, bucket_name):
    statements = _s3_statements(role_statements)

    assert statements, "the role grants no S3 access at all"
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), statement
        for resource in statement["Resource"]:
            assert isinstance(resource, str), statement
            # Objects of the bucket, or the bucket itself (s3:ListBucket).
            assert resource == f"arn:aws:s3:::{bucket_name}" or resource.startswith(
                f"arn:aws:s3:::{bucket_name}/"
            ), statement
            assert resource not in ("*", "arn:aws:s3:::*"), statement
    assert not any(s.get("NotAction") or s.get("NotResource") for s in role_statements)


def test_role_reads_objects_and_writes_and_deletes_only_under_the_thumbnail_prefix(
    role_statements, bucket_name, function
):
    prefix = function["Environment"]["Variables"]["THUMBNAIL_PREFIX"]
    granted = grants(_s3_statements(role_statements))

    assert prefix.endswith("/")
    assert prefix != "/"
    assert granted == {
        ("s3:GetObject", f"arn:aws:s3:::{bucket_name}/*"),
        ("s3:PutObject", f"arn:aws:s3:::{bucket_name}/{prefix}*"),
        ("s3:DeleteObject", f"arn:aws:s3:::{bucket_name}/{prefix}*"),
        # 404 instead of 403 for a missing key: "source deleted" must be provable.
        ("s3:ListBucket", f"arn:aws:s3:::{bucket_name}"),
    }


def test_no_statement_allows_every_action_or_resource(role_statements):
    for statement in role_statements:
        assert "*" not in statement["Action"], statement
        assert "*" not in statement["Resource"], statement


def test_bucket_notifies_the_function_on_every_object_created_removed_and_expired(resources, resolver):
    notification = resources[BUCKET_LOGICAL_ID]["Properties"]["NotificationConfiguration"]
    condition, _, default = notification["Fn::If"]
    configurations = default["LambdaConfigurations"]

    assert not resolver.condition(condition)  # the default trigger: S3 notifications

    assert configurations == [
        {"Event": "s3:ObjectCreated:*", "Function": {"Fn::GetAtt": [FUNCTION_LOGICAL_ID, "Arn"]}},
        {"Event": "s3:ObjectRemoved:*", "Function": {"Fn::GetAtt": [FUNCTION_LOGICAL_ID, "Arn"]}},
        {"Event": "s3:LifecycleExpiration:*", "Function": {"Fn::GetAtt": [FUNCTION_LOGICAL_ID, "Arn"]}},
    ]


def test_s3_invoke_permission_is_scoped_to_the_bucket_and_account(resources, bucket_name, resolver):
    permissions = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission" and resolver.condition(r.get("Condition", "Always"))
    ]

    assert len(permissions) == 1  # the default trigger: S3 notifications (EventBridge's is off)
    (permission,) = permissions
    properties = permission["Properties"]
    assert properties["Principal"] == "s3.amazonaws.com"
    assert properties["Action"] == "lambda:InvokeFunction"
    assert properties["FunctionName"] == {"Fn::GetAtt": [FUNCTION_LOGICAL_ID, "Arn"]}
    assert resolver.resolve(properties["SourceArn"]) == f"arn:aws:s3:::{bucket_name}"
    assert properties["SourceAccount"] == {"Ref": "AWS::AccountId"}
    # The bucket's notification is checked by S3 against this permission: it must exist first.
    metadata = resolver.resolve(resources[BUCKET_LOGICAL_ID]["Metadata"])
    assert metadata == {"InvokePermission": "ThumbnailInvokePermission"}


def test_function_runs_the_handler_with_the_layer(function):
    assert function["Handler"] == "handler.lambda_handler"
    assert function["Layers"] == [{"Ref": LAYER_LOGICAL_ID}]


def test_function_runtime_and_architecture_match_the_layer(function, layer):
    assert function["Runtime"] == "python3.13"
    assert function["Runtime"] in layer["CompatibleRuntimes"]
    assert len(function["Architectures"]) == 1
    assert set(function["Architectures"]) <= set(layer["CompatibleArchitectures"])
    assert function["Architectures"][0] in layer["LayerName"]


def test_function_environment_has_the_contract_defaults(function):
    assert function["Environment"]["Variables"] == {
        "THUMBNAIL_MAX_WIDTH": "128",
        "THUMBNAIL_MAX_HEIGHT": "128",
        "THUMBNAIL_PREFIX": "thumbnails/",
        "THUMBNAIL_BUCKET": "",
        "MAX_SOURCE_BYTES": "52428800",
        "MAX_SOURCE_PIXELS": "50000000",
        "THUMBNAIL_JPEG_QUALITY": "85",
        "LOG_LEVEL": "INFO",
    }
    assert "AWS_ENDPOINT_URL" not in function["Environment"]["Variables"]


def test_failed_async_invocations_retry_twice_then_go_to_the_queue(resources, role_statements):
    (config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    queue_arn = {"Fn::GetAtt": [QUEUE_LOGICAL_ID, "Arn"]}

    assert config["FunctionName"] == {"Ref": FUNCTION_LOGICAL_ID}
    assert config["MaximumRetryAttempts"] == 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert resources[QUEUE_LOGICAL_ID]["Type"] == "AWS::SQS::Queue"
    queue = "arn:aws:sqs:us-east-1:123456789012:thumbnailer-prod-thumbnail-failures"
    assert {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue]} in role_statements


def test_function_logs_are_kept_fourteen_days(resources):
    function_resource = resources[FUNCTION_LOGICAL_ID]
    (log_group_id,) = function_resource["DependsOn"]

    assert resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == 14


def test_upload_bucket_is_encrypted_and_private(resources):
    properties = resources[BUCKET_LOGICAL_ID]["Properties"]

    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_upload_bucket_policy_denies_requests_without_tls(resources):
    (policy,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": BUCKET_LOGICAL_ID}
    ]
    bucket_arn = {"Fn::GetAtt": [BUCKET_LOGICAL_ID, "Arn"]}

    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, {"Fn::Join": ["", [bucket_arn, "/*"]]}],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


def test_cfn_lint_finds_no_errors(template):
    executable = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "cfnlint"]
    result = subprocess.run(
        [*command, "--format", "parseable", "--regions", "us-east-1", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # cfn-lint's exit status is a bit set: 2 errors, 4 warnings, 8 informational; 1 a crash.
    assert result.returncode & ~(4 | 8) == 0, result.stdout + result.stderr
