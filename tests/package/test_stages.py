"""Deploys that never lose a bucket: stage settings, names checked first, partitions, regions.

Each case packages the service offline (`sls package`, a few seconds) with other options into a
folder of its own and reads the compiled template as CloudFormation would resolve it.
"""

import json
import subprocess

import pytest

from tests.package.conftest import BUCKET_LOGICAL_ID, REPO_ROOT, sls_package
from tests.support.cloudformation import Account, Resolver, grants, policy_statements

pytestmark = pytest.mark.package

STAGE_CHECKS = REPO_ROOT / "deploy" / "serverless-stage-checks.js"


def test_the_upload_bucket_survives_stack_removal_and_replacement(resources):
    bucket = resources[BUCKET_LOGICAL_ID]

    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"


def test_the_default_bucket_name_is_unique_per_account_and_region(template):
    name = template["Resources"][BUCKET_LOGICAL_ID]["Properties"]["BucketName"]

    resolved = {
        account: Resolver(template, account).resolve(name)
        for account in (Account(), Account(account_id="210987654321"), Account(region="eu-west-1"))
    }

    assert len(set(resolved.values())) == 3, resolved
    assert resolved[Account()] == "thumbnailer-prod-us-east-1-123456789012"


@pytest.mark.parametrize(
    ("partition", "region"), [("aws", "us-east-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")]
)
def test_every_arn_is_in_the_stack_s_partition(template, partition, region):
    resolver = Resolver(template, Account(partition=partition, region=region))
    permission = template["Resources"]["ThumbnailInvokePermission"]["Properties"]["SourceArn"]

    arns = [r for s in policy_statements(template["Resources"], resolver) for r in s["Resource"]]
    arns.append(resolver.resolve(permission))

    assert all(arn.startswith(f"arn:{partition}:") for arn in arns), arns


def test_the_region_follows_the_command_line(packaged):
    state = packaged("--stage", "prod", "--region", "eu-west-1")["state"]

    assert state["service"]["provider"]["region"] == "eu-west-1"


def test_attaching_to_an_existing_bucket_creates_no_bucket_and_grants_that_one(packaged):
    template = packaged("--stage", "prod", "--param", "existingBucket=company-uploads")["template"]
    resolver = Resolver(template)
    granted = grants(policy_statements(template["Resources"], resolver))

    assert not resolver.condition(template["Resources"][BUCKET_LOGICAL_ID]["Condition"])
    assert not resolver.condition(template["Resources"]["UploadBucketTlsPolicy"]["Condition"])
    assert ("s3:GetObject", "arn:aws:s3:::company-uploads/*") in granted
    assert ("s3:PutObject", "arn:aws:s3:::company-uploads/thumbnails/*") in granted
    assert resolver.resolve(template["Outputs"]["UploadBucketName"]["Value"]) == "company-uploads"
    permission = template["Resources"]["ThumbnailInvokePermission"]["Properties"]["SourceArn"]
    assert resolver.resolve(permission) == "arn:aws:s3:::company-uploads"


def test_a_separate_thumbnail_bucket_is_where_the_role_may_write(packaged):
    template = packaged("--stage", "prod", "--param", "thumbnailBucket=company-thumbnails")["template"]
    resolver = Resolver(template)
    granted = grants(policy_statements(template["Resources"], resolver))
    variables = template["Resources"]["ThumbnailLambdaFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["THUMBNAIL_BUCKET"] == "company-thumbnails"
    assert ("s3:PutObject", "arn:aws:s3:::company-thumbnails/thumbnails/*") in granted
    assert ("s3:DeleteObject", "arn:aws:s3:::company-thumbnails/thumbnails/*") in granted
    assert ("s3:GetObject", "arn:aws:s3:::thumbnailer-prod-us-east-1-123456789012/*") in granted


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--stage", "Prod"), 'stage "Prod": use lower-case letters, digits and hyphens'),
        (("--stage", "my_stage"), "Invalid stage name"),  # the framework's own check, as early
        (("--stage", "a-very-long-stage-name-for-a-test"), "the role name thumbnailer-a-very-long-stage"),
        (("--stage", "prod", "--param", "existingBucket=Not_A_Bucket"), "is not a valid S3 bucket name"),
        (
            ("--stage", "prod", "--param", "trigger=sqs"),
            'params.prod.trigger "sqs": use one of s3, eventbridge',
        ),
        (
            ("--stage", "prod", "--param", "batchRole=yes"),
            'params.prod.batchRole "yes": use one of true, false',
        ),
        (("--stage", "prod", "--param", "inventoryLocation=Inv/x"), 'inventoryLocation "Inv/x" is not'),
    ],
)
def test_names_that_cannot_deploy_are_refused_before_packaging(tmp_path, options, message):
    result = sls_package(tmp_path, *options)

    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "cloudformation-template-update-stack.json").exists()


def node(script: str) -> object:
    """Run `script` with the stage-checks plugin loaded as `checks`; return what it prints as JSON."""
    program = f"const checks = require({json.dumps(str(STAGE_CHECKS))});\n{script}"
    result = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_the_longest_stage_that_fits_is_named():
    found = node(
        "console.log(JSON.stringify(checks.problems({service: 'thumbnailer', stage: 'x'.repeat(40),"
        " region: 'ap-southeast-2', existingBucket: '', thumbnailBucket: ''})))"
    )

    # The bucket name is the tightest: thumbnailer-<stage>-ap-southeast-2-<12 digits> <= 63.
    assert any("use a stage of at most 23 characters" in problem for problem in found), found


OTHER_CONFIGURATIONS = {
    "LambdaFunctionConfigurations": [
        {
            "Id": "audit",
            "LambdaFunctionArn": "arn:aws:lambda:us-east-1:1:function:audit",
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audit/"}]}},
        }
    ],
    "QueueConfigurations": [
        {"Id": "q", "QueueArn": "arn:aws:sqs:us-east-1:1:q", "Events": ["s3:ObjectRemoved:*"]}
    ],
    "EventBridgeConfiguration": {},
}


def test_attaching_keeps_the_bucket_s_other_notifications_and_detaching_takes_only_ours():
    arn = "arn:aws:lambda:us-east-1:1:function:thumbnailer-prod-thumbnail"
    current = json.dumps(OTHER_CONFIGURATIONS)
    attached, again, detached = node(
        f"const current = {current};\n"
        f"const attached = checks.mergedNotifications(current, 'thumbnailer', 'prod', '{arn}');\n"
        f"const again = checks.mergedNotifications(attached, 'thumbnailer', 'prod', '{arn}');\n"
        "const detached = checks.mergedNotifications(again, 'thumbnailer', 'prod', null);\n"
        "console.log(JSON.stringify([attached, again, detached]));"
    )

    ours = [c for c in attached["LambdaFunctionConfigurations"] if c["LambdaFunctionArn"] == arn]
    assert sorted(c["Events"][0] for c in ours) == [
        "s3:LifecycleExpiration:*",
        "s3:ObjectCreated:*",
        "s3:ObjectRemoved:*",
    ]
    assert attached["QueueConfigurations"] == OTHER_CONFIGURATIONS["QueueConfigurations"]
    assert "EventBridgeConfiguration" in attached
    assert again == attached  # a redeploy changes nothing
    assert detached == OTHER_CONFIGURATIONS


def test_attaching_with_the_eventbridge_trigger_turns_on_delivery_and_adds_no_function():
    arn = "arn:aws:lambda:us-east-1:1:function:thumbnailer-prod-thumbnail"
    current = {key: value for key, value in OTHER_CONFIGURATIONS.items() if key != "EventBridgeConfiguration"}
    attached, detached = node(
        f"const current = {json.dumps(current)};\n"
        "const merge = (from, arn) =>"
        " checks.mergedNotifications(from, 'thumbnailer', 'prod', arn, 'eventbridge');\n"
        f"const attached = merge(current, '{arn}');\n"
        "const detached = merge(attached, null);\n"
        "console.log(JSON.stringify([attached, detached]));"
    )

    assert attached == {**current, "EventBridgeConfiguration": {}}
    assert detached == attached  # other rules may read the bucket's events: delivery stays on


@pytest.mark.parametrize(
    "params",
    [
        (),
        ("trigger=eventbridge",),
        ("batchRole=true",),
        ("existingBucket=company-uploads",),
        ("existingBucket=company-uploads", "trigger=eventbridge"),
        ("thumbnailBucket=company-thumbnails", "trigger=eventbridge", "batchRole=true"),
    ],
)
def test_no_created_resource_depends_on_one_the_stage_leaves_out(packaged, params):
    options = [option for param in params for option in ("--param", param)]
    template = packaged("--stage", "prod", *options)["template"]

    assert Resolver(template).dangling_references() == []


def _active(template: dict, resolver: Resolver) -> dict:
    """The template's resources whose Condition holds."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resolver.condition(resource.get("Condition", "Always"))
    }


def test_the_eventbridge_trigger_routes_uploads_through_a_rule_that_leaves_thumbnails_out(packaged):
    template = packaged("--stage", "prod", "--param", "trigger=eventbridge")["template"]
    resolver = Resolver(template)
    active = _active(template, resolver)
    notification = resolver.resolve(active[BUCKET_LOGICAL_ID]["Properties"]["NotificationConfiguration"])
    pattern = resolver.resolve(active["UploadEventsRule"]["Properties"]["EventPattern"])

    assert notification == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert pattern["detail"]["object"]["key"] == [{"anything-but": {"prefix": "thumbnails/"}}]
    assert pattern["detail"]["bucket"]["name"] == ["thumbnailer-prod-us-east-1-123456789012"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    (permission,) = [r for r in active.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"


def test_the_batch_role_may_only_invoke_the_function_and_use_the_batch_folder(packaged):
    template = packaged("--stage", "prod", "--param", "batchRole=true")["template"]
    resolver = Resolver(template)
    active = _active(template, resolver)
    role = active["BatchOperationsRole"]["Properties"]
    granted = grants(policy_statements(active, resolver, "BatchOperationsRole"))
    work = "arn:aws:s3:::serverlessdeploymentbucket-generated-name/batch/*"  # the deployment bucket

    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "batchoperations.s3.amazonaws.com"}
    assert granted == {
        (
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:thumbnailer-prod-thumbnail",
        ),
        ("s3:GetObject", work),
        ("s3:GetObjectVersion", work),
        ("s3:PutObject", work),
    }
    assert (
        resolver.resolve(template["Outputs"]["BatchWorkBucket"]["Value"])
        == work.split(":::")[1].split("/")[0]
    )


def test_the_batch_role_may_read_the_inventory_reports_it_is_told_of(packaged):
    options = ("--param", "batchRole=true", "--param", "inventoryLocation=company-inventory/uploads")
    template = packaged("--stage", "prod", *options)["template"]
    resolver = Resolver(template)
    role = _active(template, resolver)["BatchOperationsRole"]["Properties"]
    statements = resolver.resolve(role["Policies"][0]["PolicyDocument"]["Statement"])

    assert statements[-1] == {
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": "arn:aws:s3:::company-inventory/uploads/*",
    }
    assert len(statements) == 3


def test_without_the_parameter_there_is_no_batch_role(template, resolver):
    assert "BatchOperationsRole" not in _active(template, resolver)
