"""Python Lambda functions run by host-mode LocalStack through the ``host`` runtime executor."""

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.versions import layer_pins

pytestmark = pytest.mark.localstack

PILLOW_VERSION = layer_pins()["pillow"]

PILLOW_HANDLER = """
from PIL import Image, __version__

def lambda_handler(event, context):
    image = Image.new("RGB", (300, 200), "red")
    image.thumbnail((128, 128))
    return {"pillow": __version__, "size": list(image.size)}
"""


def invoke(lambda_client, name: str, event: dict | None = None) -> tuple[dict, dict]:
    """Invoke synchronously; return (decoded payload, raw response)."""
    response = lambda_client.invoke(
        FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail"
    )
    return json.loads(response["Payload"].read() or b"null"), response


def test_invoke_returns_payload(lambda_factory):
    name = lambda_factory("def lambda_handler(event, context):\n    return {'echo': event, 'ok': True}\n")
    payload, response = invoke(lambda_factory.client, name, {"hello": "world"})
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload == {"echo": {"hello": "world"}, "ok": True}


def test_environment_and_context_are_passed(lambda_factory, localstack_endpoint):
    code = """
import os, sys

def lambda_handler(event, context):
    names = ["GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION",
             "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "_HANDLER",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "VIRTUAL_ENV", "PYTHONPATH"]
    try:
        import localstack
        harness_visible = True
    except ImportError:
        harness_visible = False
    import boto3
    return {
        "env": {name: os.environ.get(name) for name in names},
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "has_memory_limit_in_bytes": hasattr(context, "memory_limit_in_bytes"),
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
        "harness_visible": harness_visible,
        "boto3": boto3.__version__,
        "python": list(sys.version_info[:2]),
    }
"""
    name = lambda_factory(code, MemorySize=256, Timeout=7, Environment={"Variables": {"GREETING": "hi"}})
    payload, response = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, payload
    env, context = payload["env"], payload["context"]
    assert env["GREETING"] == "hi"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ENDPOINT_URL"] == localstack_endpoint
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"]
    assert env["_HANDLER"] == "handler.lambda_handler"
    assert env["VIRTUAL_ENV"] is None
    assert env["PYTHONPATH"] is None
    assert context["function_name"] == name
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"].endswith(f":function:{name}")
    assert context["memory_limit_in_mb"] == "256"
    assert context["has_memory_limit_in_bytes"] is False  # not an attribute of AWS's context
    assert context["log_group_name"] == f"/aws/lambda/{name}"
    assert context["log_stream_name"]
    assert len(context["aws_request_id"]) == 36
    assert 0 < context["remaining"] <= 7000
    assert payload["harness_visible"] is False
    assert payload["boto3"] == "1.40.4"
    assert payload["python"] == [3, 13]


def test_function_can_call_localstack_with_boto3(lambda_factory, aws_client):
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=bucket)
    code = """
import boto3

def lambda_handler(event, context):
    boto3.client("s3").put_object(Bucket=event["bucket"], Key="from-lambda.txt", Body=b"hi")
    return "done"
"""
    try:
        name = lambda_factory(code)
        payload, response = invoke(lambda_factory.client, name, {"bucket": bucket})
        assert "FunctionError" not in response, payload
        assert s3.get_object(Bucket=bucket, Key="from-lambda.txt")["Body"].read() == b"hi"
    finally:
        s3.delete_object(Bucket=bucket, Key="from-lambda.txt")
        s3.delete_bucket(Bucket=bucket)


def test_logs_reach_cloudwatch(lambda_factory, aws_client):
    marker = uuid.uuid4().hex
    code = f"""
import logging, sys
logger = logging.getLogger()
logger.setLevel(logging.INFO)

def lambda_handler(event, context):
    print("stdout {marker}")
    print("stderr {marker}", file=sys.stderr)
    logger.info("logged {marker}")
    return "ok"
"""
    name = lambda_factory(code)
    _, response = invoke(lambda_factory.client, name)
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"stdout {marker}" in tail
    assert "REPORT RequestId:" in tail
    logs = aws_client("logs")
    wanted = {f"stdout {marker}", f"stderr {marker}", f"logged {marker}"}
    deadline = time.monotonic() + 20
    found: set[str] = set()
    while time.monotonic() < deadline:
        try:  # LocalStack forwards the logs asynchronously; the group may not exist yet
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        found = {w for w in wanted if any(w in e["message"] for e in events)}
        if found == wanted:
            break
        time.sleep(0.2)
    assert found == wanted
    logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")


def test_handler_exception_is_reported_like_aws(lambda_factory):
    name = lambda_factory("def lambda_handler(event, context):\n    raise ValueError('boom')\n")
    payload, response = invoke(lambda_factory.client, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "boom"
    assert payload["stackTrace"]
    assert "handler.py" in payload["stackTrace"][0]


def test_timeout_is_reported_and_environment_recovers(lambda_factory):
    code = """
import time

def lambda_handler(event, context):
    time.sleep(event.get("sleep", 0))
    return "finished"
"""
    name = lambda_factory(code, Timeout=1)
    started = time.monotonic()
    payload, response = invoke(lambda_factory.client, name, {"sleep": 30})
    elapsed = time.monotonic() - started
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert "Task timed out after 1.00 seconds" in base64.b64decode(response["LogResult"]).decode()
    assert elapsed < 10
    payload, response = invoke(lambda_factory.client, name, {"sleep": 0})
    assert "FunctionError" not in response
    assert payload == "finished"


def test_pillow_without_layer_fails_to_import(lambda_factory):
    name = lambda_factory(PILLOW_HANDLER)
    payload, response = invoke(lambda_factory.client, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'PIL'" in payload["errorMessage"]


def test_layer_built_for_python312_fails_with_imaging_error(lambda_factory, pillow_layer):
    layer_arn = lambda_factory.publish_layer(pillow_layer("3.12"))
    name = lambda_factory(PILLOW_HANDLER, Layers=[layer_arn])
    payload, response = invoke(lambda_factory.client, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "_imaging" in payload["errorMessage"]


def test_layer_built_for_python313_works(lambda_factory, pillow_layer):
    layer_arn = lambda_factory.publish_layer(pillow_layer("3.13"))
    name = lambda_factory(PILLOW_HANDLER, Layers=[layer_arn])
    payload, response = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, payload
    assert payload == {"pillow": PILLOW_VERSION, "size": [128, 85]}


def test_python312_runtime_uses_python312(lambda_factory):
    code = "import sys\ndef lambda_handler(event, context):\n    return list(sys.version_info[:2])\n"
    name = lambda_factory(code, runtime="python3.12")
    payload, response = invoke(lambda_factory.client, name)
    assert "FunctionError" not in response, payload
    assert payload == [3, 12]


def test_unsupported_runtime_fails_with_clear_reason(lambda_factory):
    name = lambda_factory("", runtime="nodejs20.x", wait=False)
    lambda_client = lambda_factory.client
    deadline = time.monotonic() + 20
    state = lambda_client.get_function_configuration(FunctionName=name)
    while state["State"] == "Pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        state = lambda_client.get_function_configuration(FunctionName=name)
    assert state["State"] == "Failed"
    assert "not supported by the host executor" in state["StateReason"]


def test_warm_invocations_reuse_the_environment(lambda_factory):
    code = """
import os
COUNT = 0

def lambda_handler(event, context):
    global COUNT
    COUNT += 1
    return {"pid": os.getpid(), "count": COUNT}
"""
    name = lambda_factory(code)
    results = []
    for _ in range(4):
        payload, response = invoke(lambda_factory.client, name)
        assert "FunctionError" not in response, payload
        results.append(payload)
    # One process whose module state survives between calls: the environment was reused.
    assert len({r["pid"] for r in results}) == 1
    assert [r["count"] for r in results] == [1, 2, 3, 4]


def test_parallel_invocations_use_several_environments(lambda_factory):
    code = """
import os, time

def lambda_handler(event, context):
    time.sleep(0.5)
    return {"pid": os.getpid(), "n": event["n"]}
"""
    name = lambda_factory(code, Timeout=10)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: invoke(lambda_factory.client, name, {"n": n}), range(4)))
    for payload, response in results:
        assert "FunctionError" not in response, payload
    assert sorted(payload["n"] for payload, _ in results) == [0, 1, 2, 3]
    assert len({payload["pid"] for payload, _ in results}) > 1
