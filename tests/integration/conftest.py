"""End-to-end fixtures: LocalStack on this host, the stack deployed by the real `sls deploy`.

The session deploys `serverless.yml` once with `npx sls deploy --stage local` (serverless-localstack
points it at LocalStack) and removes it at the end, also when tests fail. Override `stage` to deploy
under another name, or export AWS_ENDPOINT_URL to reuse a LocalStack that is already running.
"""

import uuid

import pytest

from harness import stack
from harness.function_log import FunctionLog
from harness.thumbnails import thumbnail_key, wait_for_thumbnails

# Upload-to-thumbnail is well under a second here; the deadline only bounds a broken run.
SETTLE_DEADLINE_S = 60.0


@pytest.fixture(scope="session")
def stage():
    """Serverless stage to deploy; `local` is the one serverless-localstack is enabled for."""
    return "local"


@pytest.fixture(scope="session")
def deploy_params():
    """`--param`s of the main stage: the batch role too, so its template path deploys as well."""
    return {"batchRole": "true"}


@pytest.fixture(scope="session")
def deployed_stack(localstack_endpoint, stage, deploy_params, eventbridge_deployment):
    """Deploy with `sls deploy --stage <stage>`; empty the bucket and `sls remove` afterwards."""
    try:
        deployed = stack.deploy(localstack_endpoint, stage, deploy_params)
    except stack.DeployError as exc:
        pytest.fail(str(exc))
    eventbridge_deployment.start()
    yield deployed
    stack.remove(localstack_endpoint, deployed)


@pytest.fixture(scope="session")
def eventbridge_deployment(request, localstack_endpoint):
    """The `local-eventbridge` stage's deploy, in the background once the main stage is deployed
    (the framework packages into one .serverless/ folder, so never both at once) and only when a
    selected test needs it: the tests before it run meanwhile. Removed at the end if it was made."""
    deployment = stack.BackgroundDeploy(
        localstack_endpoint,
        "local-eventbridge",
        {"trigger": "eventbridge"},
        enabled=any("eventbridge_stack" in item.fixturenames for item in request.session.items),
    )
    yield deployment
    deployment.remove()


@pytest.fixture(scope="session")
def eventbridge_stack(deployed_stack, eventbridge_deployment):
    """The same service as stage `local-eventbridge` with `--param trigger=eventbridge`: S3 sends
    its events to EventBridge, whose rule invokes the function."""
    try:
        return eventbridge_deployment.result()
    except stack.DeployError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def s3(aws_client):
    """S3 client bound to LocalStack."""
    return aws_client("s3")


@pytest.fixture
def key_prefix(s3, deployed_stack):
    """A folder unique to this test; everything under it (and its thumbnails) is deleted afterwards."""
    prefix = f"it-{uuid.uuid4().hex[:12]}/"
    yield prefix
    for folder in (prefix, thumbnail_key(prefix)):
        listed = s3.list_objects_v2(Bucket=deployed_stack.bucket, Prefix=folder)
        for item in listed.get("Contents", []):
            s3.delete_object(Bucket=deployed_stack.bucket, Key=item["Key"])


@pytest.fixture(scope="session")
def function_logs(aws_client, deployed_stack):
    """The deployed function's whole log (CloudWatch Logs): `.read().lines`, `.wait_for(predicate)`."""
    return FunctionLog(aws_client("logs"), deployed_stack.log_group)


@pytest.fixture(scope="session")
def wait_for_thumbnail(s3, deployed_stack):
    """Callable: wait, at most SETTLE_DEADLINE_S, until `thumbnails/<key>` exists; returns its GetObject."""

    def wait(key: str) -> dict:
        wait_for_thumbnails(s3, deployed_stack.bucket, [key], deadline_s=SETTLE_DEADLINE_S)
        return s3.get_object(Bucket=deployed_stack.bucket, Key=thumbnail_key(key))

    return wait
