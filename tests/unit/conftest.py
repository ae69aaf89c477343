"""Fixtures for the unit suite: fake AWS credentials, moto's S3, and the handler loaded inside it."""

import importlib
import io
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


class _FaultyCalls:
    """One invocation's storage whose `operation` raises `error` for keys containing `marker`."""

    def __init__(self, storage, operation: str, marker: str, error: Exception):
        self._storage, self._operation, self._marker, self._error = storage, operation, marker, error

    def __getattr__(self, operation):
        call = getattr(self._storage, operation)
        if not callable(call):  # the request counter
            return call

        def faulty(bucket, key, *args, **kwargs):
            if operation == self._operation and self._marker in key:
                raise self._error
            return call(bucket, key, *args, **kwargs)

        return faulty


@pytest.fixture
def inject_fault(handler, monkeypatch):
    """Callable: make the handler's `operation` (fetch, etag, store, delete) raise `error` for keys
    containing `marker`; every other call goes to the real S3Storage over moto."""

    def inject(operation: str, error: Exception, marker: str = "flaky") -> None:
        storage = handler.STORAGE

        class Faulty:
            def within(self, deadline):
                return _FaultyCalls(storage.within(deadline), operation, marker, error)

        monkeypatch.setattr(handler, "STORAGE", Faulty())

    return inject


class StubLambda:
    """A Lambda client whose invoke answers with a canned payload and records (function, event)."""

    def __init__(self, payload: dict, function_error: str | None = None, environment: dict | None = None):
        self.payload, self.function_error, self.environment = payload, function_error, environment or {}
        self.events: list[tuple[str, dict]] = []

    def invoke(self, FunctionName, InvocationType, Payload):
        assert InvocationType == "RequestResponse"
        self.events.append((FunctionName, json.loads(Payload)))
        response = {"Payload": io.BytesIO(json.dumps(self.payload).encode())}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response

    def get_function_configuration(self, FunctionName):
        return {
            "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{FunctionName}",
            "Environment": {"Variables": self.environment},
        }
