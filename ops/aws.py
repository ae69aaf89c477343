"""What the operator commands share: boto3 clients, invoking the deployed function, JSON log lines."""

import json
import logging
from dataclasses import dataclass, field

from thumbnailer.logs import json_handler

SERVICE = "thumbnailer"  # serverless.yml's service: stacks are named <service>-<stage>
READ_TIMEOUT_S = 120  # a synchronous invocation runs up to the function's timeout (30 s), plus retries
MAX_ATTEMPTS = 5


def client_config(max_pool_connections: int = 10):
    """The botocore Config of every client here and in the harness: long reads, standard retries."""
    from botocore.config import Config

    return Config(
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=max_pool_connections,
    )


def clients(*services: str, region: str | None = None, concurrency: int = 1) -> tuple:
    """One boto3 client per service name, with retries and a connection pool for `concurrency` calls."""
    import boto3

    config = client_config(max(10, 2 * concurrency))
    session = boto3.Session(region_name=region)
    return tuple(session.client(service, config=config) for service in services)


def stack_outputs(cloudformation, stack_name: str) -> dict[str, str]:
    """A CloudFormation stack's outputs, by key."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


@dataclass(frozen=True)
class Invocation:
    """The result of one synchronous invocation: its outcome counts, or why it failed."""

    ok: bool
    outcomes: dict = field(default_factory=dict)
    error: str | None = None


class FunctionInvoker:
    """Invokes a deployed function synchronously with an event and reads what it returned."""

    def __init__(self, lambda_client):
        self._client = lambda_client

    def __call__(self, function: str, event: dict) -> Invocation:
        """Invoke `function` (name or ARN) with `event` and wait for its result."""
        response = self._client.invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        raw = response["Payload"].read()
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            payload = None
        if response.get("FunctionError"):
            if isinstance(payload, dict):
                return Invocation(False, error=f"{payload.get('errorType')}: {payload.get('errorMessage')}")
            return Invocation(False, error=raw.decode(errors="replace")[:500])
        outcomes = payload.get("outcomes", {}) if isinstance(payload, dict) else {}
        return Invocation(True, outcomes=outcomes)


def json_logger(name: str) -> logging.Logger:
    """The command's logger: JSON lines (the function's own format) on stderr, INFO and up."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        logger.addHandler(json_handler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
