"""End-to-end fixtures: LocalStack on this host, the stack deployed by the real `sls deploy`.

The session deploys `serverless.yml` once with `npx sls deploy --stage local` (serverless-localstack
points it at LocalStack) and removes it at the end, also when tests fail. Override `stage` to deploy
under another name, or export AWS_ENDPOINT_URL to reuse a LocalStack that is already running.
"""

import time
import uuid

import pytest

from tools import stack as stack_tools

# Upload-to-thumbnail is well under a second here; the deadline only bounds a broken run.
SETTLE_DEADLINE_S = 60.0


@pytest.fixture(scope="session")
def stage():
    """Serverless stage to deploy; `local` is the one serverless-localstack is enabled for."""
    return "local"


@pytest.fixture(scope="session")
def deployed_stack(localstack_endpoint, stage):
    """Deploy with `sls deploy --stage <stage>`; empty the bucket and `sls remove` afterwards."""
    try:
        stack = stack_tools.deploy(localstack_endpoint, stage)
    except stack_tools.DeployError as exc:
        pytest.fail(str(exc))
    yield stack
    stack_tools.remove(localstack_endpoint, stack)


@pytest.fixture(scope="session")
def s3(aws_client):
    """S3 client bound to LocalStack."""
    return aws_client("s3")


@pytest.fixture
def key_prefix(s3, deployed_stack):
    """A folder unique to this test; everything under it (and its thumbnails) is deleted afterwards."""
    prefix = f"it-{uuid.uuid4().hex[:12]}/"
    yield prefix
    for folder in (prefix, f"thumbnails/{prefix}"):
        listed = s3.list_objects_v2(Bucket=deployed_stack.bucket, Prefix=folder)
        for item in listed.get("Contents", []):
            s3.delete_object(Bucket=deployed_stack.bucket, Key=item["Key"])


class FunctionLogs:
    """Reads the function's JSON log lines from CloudWatch Logs in LocalStack."""

    def __init__(self, client, log_group: str):
        self._client, self._log_group = client, log_group

    def records(self) -> list[dict]:
        """Every JSON line the function has logged so far, oldest first."""
        return stack_tools.read_function_log(self._client, self._log_group).lines

    def wait_for(self, predicate, count: int = 1, deadline_s: float = SETTLE_DEADLINE_S) -> list[dict]:
        """Poll until at least `count` log lines satisfy `predicate`; return the matching lines."""
        deadline = time.monotonic() + deadline_s
        while True:
            matching = [line for line in self.records() if predicate(line)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(matching)} of {count} log lines matched within {deadline_s} s")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def function_logs(aws_client, deployed_stack):
    """The deployed function's log lines (CloudWatch Logs)."""
    return FunctionLogs(aws_client("logs"), deployed_stack.log_group)


@pytest.fixture(scope="session")
def wait_for_thumbnail(s3, deployed_stack):
    """Callable: wait (boto3 waiter, bounded) until `thumbnails/<key>` exists and return its response."""
    waiter = s3.get_waiter("object_exists")

    def wait(key: str) -> dict:
        thumbnail_key = f"thumbnails/{key}"
        waiter.wait(
            Bucket=deployed_stack.bucket,
            Key=thumbnail_key,
            WaiterConfig={"Delay": 1, "MaxAttempts": int(SETTLE_DEADLINE_S)},
        )
        return s3.get_object(Bucket=deployed_stack.bucket, Key=thumbnail_key)

    return wait
