"""ops/backfill.py --engine s3-batch: manifests, the CreateJob request (checked against botocore's
model of s3control), inventory discovery; moto's S3, a stubbed s3control."""

import csv
import io
import json

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from harness.batch_job import task_event
from ops import backfill, batch
from tests.unit.conftest import BUCKET, StubLambda
from thumbnailer.events import parse_event

FUNCTION = batch.FunctionArn("arn:aws:lambda:eu-west-1:123456789012:function:thumbnailer-prod-thumbnail")
ROLE = "arn:aws:iam::123456789012:role/thumbnailer-prod-eu-west-1-batchRole"
INVENTORY_BUCKET = "example-inventory"
WORK_BUCKET = "thumbnailer-prod-serverlessdeploymentbucket-1a2b3c"


def batch_task_event(manifest_row: str) -> dict:
    """The invocation Batch Operations makes for one manifest row (schema 2.0)."""
    bucket, key = next(csv.reader(io.StringIO(manifest_row)))
    return task_event(bucket, key, task_id="t", job_id="job")


@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60))
def test_a_manifest_row_reaches_the_function_as_the_same_key(key):
    row = batch.manifest_row(BUCKET, key)

    (task,) = parse_event(batch_task_event(row)).batch.tasks

    assert row.count(",") == 1
    assert row.count("\n") == 1
    assert row.endswith("\n")
    assert (task.target.bucket, task.target.key) == (BUCKET, key)


def test_the_manifest_is_streamed_to_s3_with_its_etag(s3):
    s3.create_bucket(Bucket=WORK_BUCKET)
    keys = ["a b.jpg", "x,y.png", "ü/🙂.gif"]

    manifest = batch.write_manifest(s3, BUCKET, keys, WORK_BUCKET, "batch/manifests/m.csv")

    body = s3.get_object(Bucket=WORK_BUCKET, Key="batch/manifests/m.csv")["Body"].read().decode()
    assert body == f"{BUCKET},a%20b.jpg\n{BUCKET},x%2Cy.png\n{BUCKET},%C3%BC/%F0%9F%99%82.gif\n"
    assert manifest.etag == s3.head_object(Bucket=WORK_BUCKET, Key="batch/manifests/m.csv")["ETag"]
    assert (manifest.objects, manifest.format) == (3, batch.CSV_MANIFEST)


def request(manifest: batch.Manifest, **overrides) -> dict:
    options = {
        "function": FUNCTION,
        "role_arn": ROLE,
        "manifest": manifest,
        "report_bucket": WORK_BUCKET,
        "start": False,
        "description": "thumbnail backfill",
        "token": "token-1",
    }
    return batch.job_request(**(options | overrides))


@pytest.fixture
def s3control():
    """A real s3control client (botocore validates every request against the service model) whose
    answers come from a Stubber, which also checks the request against what the test expects."""
    client = boto3.client("s3control", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.mark.parametrize(
    "manifest",
    [
        batch.Manifest(WORK_BUCKET, "batch/manifests/m.csv", '"abc"', batch.CSV_MANIFEST, 3),
        batch.Manifest(
            INVENTORY_BUCKET,
            "inv/example-uploads/all/2026-11-29T01-00Z/manifest.json",
            '"e"',
            batch.INVENTORY_MANIFEST,
        ),
    ],
    ids=["listing", "inventory"],
)
def test_the_create_job_request_matches_the_service_model(s3control, manifest):
    client, stubber = s3control
    params = request(manifest)
    stubber.add_response("create_job", {"JobId": "job-1"}, expected_params=params)

    assert client.create_job(**params)["JobId"] == "job-1"
    operation = params["Operation"]["LambdaInvoke"]
    assert (operation["FunctionArn"], operation["InvocationSchemaVersion"]) == (FUNCTION.arn, "2.0")
    assert params["Report"]["Bucket"] == f"arn:aws:s3:::{WORK_BUCKET}"
    assert params["Report"]["Prefix"] == "batch/reports"  # where the stack's batch role may write
    assert params["Manifest"]["Location"]["ObjectArn"] == f"arn:aws:s3:::{manifest.bucket}/{manifest.key}"
    assert params["ConfirmationRequired"] is True


def test_the_model_check_would_catch_a_malformed_request(s3control):
    client, stubber = s3control
    params = request(batch.Manifest(BUCKET, "m.csv", '"e"', batch.CSV_MANIFEST))
    params["Report"]["Format"] = 20180820  # not a string
    stubber.add_response("create_job", {"JobId": "job-1"})  # the model check comes first

    with pytest.raises(ParamValidationError):
        client.create_job(**params)


def test_arns_follow_the_function_s_partition():
    china = batch.FunctionArn("arn:aws-cn:lambda:cn-north-1:123456789012:function:f")

    params = request(batch.Manifest(BUCKET, "m.csv", '"e"', batch.CSV_MANIFEST), function=china)

    assert params["Report"]["Bucket"].startswith("arn:aws-cn:s3:::")
    assert params["Manifest"]["Location"]["ObjectArn"].startswith("arn:aws-cn:s3:::")
    assert "--region cn-north-1" in batch.follow_commands(china, "job-1", started=False)["start"]


@pytest.fixture
def inventory(s3):
    """Callable: an inventory configuration of BUCKET and a manifest.json for each of its `runs`."""
    s3.create_bucket(Bucket=INVENTORY_BUCKET)
    versions_by_id = {}

    def moto_keeps_included_versions(parsed, **_):  # moto 5.2.5 answers "All" whatever was stored
        for configuration in parsed.get("InventoryConfigurationList", []):
            configuration["IncludedObjectVersions"] = versions_by_id[configuration["Id"]]

    s3.meta.events.register("after-call.s3.ListBucketInventoryConfigurations", moto_keeps_included_versions)

    def configure(config_id="all", *, versions="Current", output="CSV", enabled=True, runs=()):
        versions_by_id[config_id] = versions
        destination = {"Bucket": f"arn:aws:s3:::{INVENTORY_BUCKET}", "Format": output, "Prefix": "inv"}
        s3.put_bucket_inventory_configuration(
            Bucket=BUCKET,
            Id=config_id,
            InventoryConfiguration={
                "Id": config_id,
                "IsEnabled": enabled,
                "IncludedObjectVersions": versions,
                "Schedule": {"Frequency": "Daily"},
                "Destination": {"S3BucketDestination": destination},
            },
        )
        for run in runs:
            key = f"inv/{BUCKET}/{config_id}/{run}/manifest.json"
            s3.put_object(Bucket=INVENTORY_BUCKET, Key=key, Body=b"{}")

    return configure


def test_the_newest_usable_inventory_report_is_the_manifest(s3, inventory):
    inventory("all", runs=["2026-11-27T01-00Z", "2026-11-29T01-00Z"])
    inventory("parquet", output="Parquet", runs=["2026-11-30T01-00Z"])  # Batch Operations: CSV only
    inventory("versions", versions="All", runs=["2026-11-30T01-00Z"])  # a task per version
    inventory("off", enabled=False, runs=["2026-11-30T02-00Z"])
    # A run still being written (no manifest.json yet) is passed over.
    s3.put_object(Bucket=INVENTORY_BUCKET, Key=f"inv/{BUCKET}/all/2026-11-30T01-00Z/data.csv.gz", Body=b"")

    manifest = batch.latest_inventory(s3, BUCKET)

    assert manifest.url == f"s3://{INVENTORY_BUCKET}/inv/{BUCKET}/all/2026-11-29T01-00Z/manifest.json"
    assert manifest.format == batch.INVENTORY_MANIFEST
    assert manifest.spec() == {"Format": batch.INVENTORY_MANIFEST}


def test_no_usable_inventory_means_no_inventory_manifest(s3, inventory):
    inventory("parquet", output="Parquet", runs=["2026-11-30T01-00Z"])

    assert batch.latest_inventory(s3, BUCKET) is None


class StackedLambda(StubLambda):
    """A Lambda client for a function deployed by the stack thumbnailer-prod."""

    def list_tags(self, Resource):
        return {"Tags": {"aws:cloudformation:stack-name": "thumbnailer-prod"}}


@pytest.fixture
def cloudformation():
    """A real CloudFormation client answering DescribeStacks with the stack's outputs (a Stubber)."""
    client = boto3.client("cloudformation", region_name="eu-west-1")
    outputs = {"BatchOperationsRoleArn": ROLE, "BatchWorkBucket": WORK_BUCKET}
    stack = {
        "StackName": "thumbnailer-prod",
        "CreationTime": "2026-11-30T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
    }
    with Stubber(client) as stubber:
        stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "thumbnailer-prod"})
        yield client


def run_cli(monkeypatch, capsys, s3, s3control, cloudformation, *args) -> dict:
    monkeypatch.setattr(
        backfill, "clients", lambda *names, **options: (s3, StackedLambda({}), s3control, cloudformation)
    )
    s3.create_bucket(Bucket=WORK_BUCKET)
    code = backfill.main(["--bucket", BUCKET, "--function", "thumbnailer-prod-thumbnail", *args])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    return json.loads(out[-1]) | {"lines": [json.loads(line) for line in out[:-1]]}


def test_without_an_inventory_the_listing_s_missing_and_stale_sources_become_the_manifest(
    s3, s3control, cloudformation, monkeypatch, capsys
):
    client, stubber = s3control
    for key in ("a.jpg", "b c.jpg", "thumbnails/b c.jpg", "photos/"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    stubber.add_response("create_job", {"JobId": "job-7"})

    summary = run_cli(monkeypatch, capsys, s3, client, cloudformation, "--engine", "s3-batch")

    manifest_key = summary["manifest"]["url"].removeprefix(f"s3://{WORK_BUCKET}/")
    assert manifest_key.startswith("batch/manifests/")  # where the role may read; notifies nobody
    rows = s3.get_object(Bucket=WORK_BUCKET, Key=manifest_key)["Body"].read().decode()
    assert rows == f"{BUCKET},a.jpg\n"  # b c.jpg is up to date; thumbnails and folders are no sources
    assert (summary["missing"], summary["up_to_date"], summary["manifest"]["objects"]) == (1, 1, 1)
    assert summary["job_id"] == "job-7"
    assert summary["status"] == "awaiting confirmation"
    assert summary["report"] == f"s3://{WORK_BUCKET}/batch/reports/job-job-7/"
    assert "--requested-job-status Ready" in summary["commands"]["start"]
    stubber.assert_no_pending_responses()


def test_a_dry_run_prints_the_request_and_creates_nothing(s3, s3control, cloudformation, monkeypatch, capsys):
    client, _ = s3control  # no response queued: any call would fail the test
    s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=b"x")

    options = ("--engine", "s3-batch", "--dry-run", "--start")
    summary = run_cli(monkeypatch, capsys, s3, client, cloudformation, *options)

    assert summary["lines"] == [{"key": "a.jpg"}]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["a.jpg"]
    assert "Contents" not in s3.list_objects_v2(Bucket=WORK_BUCKET)
    assert summary["create_job_request"]["ConfirmationRequired"] is False
    assert summary["create_job_request"]["RoleArn"] == ROLE


def test_an_inventory_is_used_as_it_is(s3, s3control, inventory, monkeypatch, capsys):
    cloudformation = None  # --role-arn and --work-bucket given: the stack is not asked
    client, _ = s3control  # a dry run: nothing is created
    inventory("all", runs=["2026-11-29T01-00Z"])
    key = f"inv/{BUCKET}/all/2026-11-29T01-00Z/manifest.json"
    etag = s3.head_object(Bucket=INVENTORY_BUCKET, Key=key)["ETag"]
    expected_location = {"ObjectArn": f"arn:aws:s3:::{INVENTORY_BUCKET}/{key}", "ETag": etag}

    options = ("--engine", "s3-batch", "--role-arn", ROLE, "--work-bucket", WORK_BUCKET, "--dry-run")
    summary = run_cli(monkeypatch, capsys, s3, client, cloudformation, *options)

    assert summary["create_job_request"]["Manifest"]["Location"] == expected_location
    assert "missing" not in summary  # nothing listed from this machine


def test_the_batch_engine_needs_a_deployed_function(capsys):
    with pytest.raises(SystemExit) as exit_:
        backfill.main(["--bucket", BUCKET, "--local", "--engine", "s3-batch"])

    assert exit_.value.code == 2
    assert "give --function" in capsys.readouterr().err


def test_a_stack_without_the_batch_role_is_named_with_the_fix(s3, monkeypatch, capsys):
    monkeypatch.setattr(backfill, "clients", lambda *names, **options: (s3, StubLambda({}), None, None))
    monkeypatch.setattr(StubLambda, "list_tags", lambda self, Resource: {"Tags": {}}, raising=False)

    with pytest.raises(SystemExit) as exit_:
        backfill.main(["--bucket", BUCKET, "--function", "f", "--engine", "s3-batch"])

    assert exit_.value.code == 2
    assert "deploy it with `--param batchRole=true`" in capsys.readouterr().err
