"""Fixtures for the unit suite: fake AWS credentials, moto's S3, and the handler loaded inside it."""

import importlib
import json
import sys

import boto3
import pytest
from moto import mock_aws

BUCKET = "example-uploads"


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    """Credentials and region that only moto accepts, so no test can reach real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3():
    """A moto S3 client with an empty upload bucket named BUCKET."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def function_env():
    """Environment variables of the function; override this fixture to change settings."""
    return {}


@pytest.fixture
def handler(s3, function_env, monkeypatch):
    """The `handler` module imported afresh (a cold start) inside moto, with `function_env` set."""
    for name, value in function_env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("handler", None)
    module = importlib.import_module("handler")
    yield module
    sys.modules.pop("handler", None)


@pytest.fixture
def log_lines(capsys):
    """A callable returning the JSON log lines written to stdout so far, parsed."""

    def read():
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    return read
