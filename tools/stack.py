"""Deploy, describe and remove the Serverless stack on LocalStack (used by `make demo` and the tests).

Deployment goes through the real, pinned Serverless CLI (`npx sls deploy --stage local`), with the
same serverless.yml as production; serverless-localstack points it at LocalStack.
"""

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_PY = REPO_ROOT / "localstack" / "server.py"
SLS_TIMEOUT_S = 600
SERVICE = "thumbnailer"
REGION = "us-east-1"


class DeployError(RuntimeError):
    """`sls deploy` or `sls remove` failed; the message carries the end of its output."""


@dataclass(frozen=True)
class Stack:
    """Names of the deployed stack's parts."""

    stage: str
    function_name: str
    bucket: str
    failure_queue_url: str

    @property
    def log_group(self) -> str:
        """CloudWatch Logs group of the function."""
        return f"/aws/lambda/{self.function_name}"


def localstack_server():
    """Import localstack/server.py by path (the folder's name would shadow localstack-core)."""
    name = "localstack_host_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SERVER_PY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "SLS_TELEMETRY_DISABLED": "1",
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


def deploy(endpoint: str, stage: str = "local") -> Stack:
    """`sls deploy --stage <stage>` and return the stack's names from its outputs."""
    ensure_node_modules()
    _checked(sls("deploy", "--stage", stage, endpoint=endpoint), "sls deploy")
    return describe(endpoint, stage)


def describe(endpoint: str, stage: str = "local") -> Stack:
    """The names of an already deployed stack."""
    cloudformation = client("cloudformation", endpoint)
    stack = cloudformation.describe_stacks(StackName=f"{SERVICE}-{stage}")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Stack(
        stage=stage,
        function_name=f"{SERVICE}-{stage}-thumbnail",
        bucket=outputs["UploadBucketName"],
        failure_queue_url=outputs["ThumbnailFailureQueueUrl"],
    )


def remove(endpoint: str, stack: Stack) -> None:
    """`sls remove`, then delete the upload bucket it keeps, as `tools/uploads.py delete --yes` does."""
    from tools import uploads

    _checked(sls("remove", "--stage", stack.stage, endpoint=endpoint), "sls remove")
    s3 = client("s3", endpoint)
    uploads.delete_contents(s3, uploads.list_contents(s3, stack.bucket), keep_bucket=False)


@dataclass
class FunctionLog:
    """What a function has logged: its JSON lines (oldest first) and START lines per request id."""

    lines: list[dict] = field(default_factory=list)
    starts: Counter = field(default_factory=Counter)


def read_function_log(logs_client, log_group: str, since_ms: int | None = None) -> FunctionLog:
    """Read the function's CloudWatch Logs (all pages); empty before its first invocation."""
    log = FunctionLog()
    window = {"startTime": since_ms} if since_ms is not None else {}
    try:
        for page in logs_client.get_paginator("filter_log_events").paginate(logGroupName=log_group, **window):
            for event in page["events"]:
                message = event["message"].strip()
                if message.startswith("{"):
                    with contextlib.suppress(ValueError):
                        log.lines.append(json.loads(message))
                elif message.startswith("START RequestId: "):
                    log.starts[message.split()[2]] += 1
    except logs_client.exceptions.ResourceNotFoundException:
        pass
    return log


def client(service: str, endpoint: str):
    """A boto3 client bound to LocalStack with fake credentials."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(read_timeout=120, retries={"mode": "standard", "max_attempts": 3}),
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["node-modules"]:
        sys.exit("usage: python tools/stack.py node-modules   (npm ci when package-lock.json changed)")
    ensure_node_modules()
