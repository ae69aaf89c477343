"""Session fixtures shared by the LocalStack suites (tests/localstack, tests/integration).

They are lazy: unit tests never request them, so they never start anything.
"""

import pytest

from harness import localstack


@pytest.fixture(scope="session")
def localstack_endpoint():
    """URL of a healthy host-mode LocalStack, started for the session and stopped afterwards.

    Export AWS_ENDPOINT_URL (or LOCALSTACK_ENDPOINT) to reuse one that is already running; it is
    then left running.
    """
    with localstack.server().localstack_running() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def aws_client(localstack_endpoint):
    """Factory: `aws_client("s3")` is a boto3 client bound to LocalStack with fake credentials."""

    def client(service: str, **options):
        return localstack.client(service, localstack_endpoint, **options)

    return client
