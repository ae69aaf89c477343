"""Deploy, describe and remove the Serverless stack on LocalStack.

    python -m harness.stack node-modules     # npm ci when package-lock.json changed (tox runs it)

Deployment goes through the real, pinned Serverless CLI (`npx sls deploy --stage local`), with the
same serverless.yml as production; serverless-localstack points it at LocalStack.
"""

import argparse
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from harness import REPO_ROOT
from harness.localstack import CREDENTIALS, REGION, client
from ops.aws import SERVICE, stack_outputs

SLS_TIMEOUT_S = 600
MONITORING_MS = 200


class DeployError(RuntimeError):
    """`sls deploy` or `sls remove` failed; the message carries the end of its output."""


@dataclass(frozen=True)
class Stack:
    """Names of the deployed stack's parts."""

    stage: str
    function_name: str
    bucket: str
    failure_queue_url: str
    outputs: dict[str, str]

    @property
    def log_group(self) -> str:
        """CloudWatch Logs group of the function."""
        return f"/aws/lambda/{self.function_name}"


def ensure_node_modules() -> None:
    """`npm ci` when node_modules is missing or older than package-lock.json."""
    installed = REPO_ROOT / "node_modules" / ".package-lock.json"
    lock = REPO_ROOT / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO_ROOT, check=True)


def sls(*args: str, endpoint: str) -> subprocess.CompletedProcess:
    """Run the pinned Serverless CLI from node_modules against `endpoint` with fake credentials."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "SLS_TELEMETRY_DISABLED": "1",
        # How often the framework asks CloudFormation whether the stack is done: its default, 5 s,
        # suits AWS; LocalStack finishes a stack in well under a second, so a deploy waited ~10 s.
        "SLS_AWS_MONITORING_FREQUENCY": os.environ.get("SLS_AWS_MONITORING_FREQUENCY", str(MONITORING_MS)),
    }
    return subprocess.run(
        ["npx", "--no-install", "sls", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SLS_TIMEOUT_S,
        check=False,
    )


def _checked(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise DeployError(
            f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def deploy(endpoint: str, stage: str = "local", params: dict[str, str] | None = None) -> Stack:
    """`sls deploy --stage <stage> [--param name=value ...]`; the stack's names from its outputs."""
    ensure_node_modules()
    options = [option for name, value in (params or {}).items() for option in ("--param", f"{name}={value}")]
    _checked(sls("deploy", "--stage", stage, *options, endpoint=endpoint), "sls deploy")
    return describe(endpoint, stage)


def describe(endpoint: str, stage: str = "local") -> Stack:
    """The names of an already deployed stack."""
    outputs = stack_outputs(client("cloudformation", endpoint), f"{SERVICE}-{stage}")
    return Stack(
        stage=stage,
        function_name=f"{SERVICE}-{stage}-thumbnail",
        bucket=outputs["UploadBucketName"],
        failure_queue_url=outputs["ThumbnailFailureQueueUrl"],
        outputs=outputs,
    )


def remove(endpoint: str, stack: Stack) -> None:
    """`sls remove`, then delete the upload bucket it keeps, as `python -m ops.uploads delete --yes` does."""
    from ops import uploads

    _checked(sls("remove", "--stage", stack.stage, endpoint=endpoint), "sls remove")
    s3 = client("s3", endpoint)
    uploads.delete_contents(s3, uploads.list_contents(s3, stack.bucket), keep_bucket=False)


class BackgroundDeploy:
    """`deploy(endpoint, stage, params)` in a thread once `start()`ed (when `enabled`); `result()`
    waits for it (starting it if need be), `remove()` removes what it deployed."""

    def __init__(self, endpoint: str, stage: str, params: dict[str, str] | None = None, *, enabled=True):
        self.endpoint, self.stage, self.params, self.enabled = endpoint, stage, params, enabled
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"deploy-{stage}")
        self._future: Future[Stack] | None = None

    def start(self) -> None:
        """Begin the deploy (once; nothing when not enabled)."""
        if self.enabled and self._future is None:
            self._future = self._executor.submit(deploy, self.endpoint, self.stage, self.params)

    def result(self) -> Stack:
        """The deployed stack; DeployError if the deploy failed."""
        self.start()
        if self._future is None:
            raise DeployError(f"the deploy of stage {self.stage} is not enabled")
        return self._future.result()

    def remove(self) -> None:
        """`remove()` the stack if it was deployed; waits for a deploy still under way."""
        self._executor.shutdown(wait=True)
        if self._future is not None and self._future.exception() is None:
            remove(self.endpoint, self._future.result())


def main(argv: list[str] | None = None) -> int:
    """Command line: `node-modules`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("node-modules", help="npm ci when node_modules is older than package-lock.json")
    parser.parse_args(argv)
    ensure_node_modules()
    return 0


if __name__ == "__main__":
    sys.exit(main())
