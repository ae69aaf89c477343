"""Session fixtures shared by the LocalStack suites (tests/localstack, tests/integration).

They are lazy: unit tests never request them, so they never start anything.
"""

import pytest

from tools import stack as stack_tools


@pytest.fixture(scope="session")
def localstack_endpoint():
    """URL of a healthy host-mode LocalStack, started for the session and stopped afterwards.

    Export AWS_ENDPOINT_URL (or LOCALSTACK_ENDPOINT) to reuse one that is already running; it is
    then left running.
    """
    with stack_tools.localstack_server().localstack_running() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def aws_client(localstack_endpoint):
    """Factory: `aws_client("s3")` is a boto3 client bound to LocalStack with fake credentials."""

    def client(service: str):
        return stack_tools.client(service, localstack_endpoint)

    return client
