"""Docker mode with what the free LocalStack image supports.

A Python function runs in a Lambda container, and our real stack deploys with `npx sls deploy
--stage local` on the container's port (serverless-localstack takes the endpoint from
AWS_ENDPOINT_URL, which harness/stack.py sets, before serverless.yml's host and edgePort). The
free image does not apply layers, so the deployed function cannot import Pillow there: the
end-to-end suite (tests/integration) runs in this session only with LOCALSTACK_AUTH_TOKEN.
"""

import io
import json
import uuid
import zipfile

import pytest

from harness import stack

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack_on_docker(docker_endpoint):
    """serverless.yml deployed to the container by `sls deploy --stage local`; removed afterwards.

    Module scope: removed before tests/integration deploys the same stage in this session.
    """
    try:
        deployed = stack.deploy(docker_endpoint)
    except stack.DeployError as exc:
        pytest.fail(str(exc))
    yield deployed
    stack.remove(docker_endpoint, deployed)


def test_a_python_function_runs_in_a_lambda_container(docker_client):
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    lambda_client = docker_client("lambda")
    name = f"docker-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Handler="handler.lambda_handler",
        Role="arn:aws:iam::000000000000:role/lambda-test-role",
        Code={"ZipFile": code.getvalue()},
    )
    try:
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
        response = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"a": 1}).encode())
        assert json.loads(response["Payload"].read()) == {"a": 1}
    finally:
        lambda_client.delete_function(FunctionName=name)


def test_sls_deploys_the_real_stack_on_the_docker_port(stack_on_docker, docker_client):
    function = docker_client("lambda").get_function_configuration(FunctionName=stack_on_docker.function_name)
    assert function["State"] == "Active"
    assert function["Runtime"] == "python3.13"
    assert [layer["Arn"] for layer in function["Layers"] if "pillow" in layer["Arn"]]

    notifications = docker_client("s3").get_bucket_notification_configuration(Bucket=stack_on_docker.bucket)
    targets = [c["LambdaFunctionArn"] for c in notifications.get("LambdaFunctionConfigurations", [])]
    assert targets
    assert all(target.endswith(f":function:{stack_on_docker.function_name}") for target in targets)

    queue = docker_client("sqs").get_queue_attributes(
        QueueUrl=stack_on_docker.failure_queue_url, AttributeNames=["QueueArn"]
    )
    assert queue["Attributes"]["QueueArn"].endswith("-thumbnail-failures")


def test_the_free_image_does_not_apply_the_pillow_layer(stack_on_docker, docker_client, docker_settings):
    if docker_settings.token:
        pytest.skip("LOCALSTACK_AUTH_TOKEN is set: the layer applies, and tests/integration runs end to end")
    response = docker_client("lambda").invoke(
        FunctionName=stack_on_docker.function_name, Payload=json.dumps({"Records": []}).encode()
    )
    error = json.loads(response["Payload"].read())
    assert response.get("FunctionError") == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'PIL'" in error["errorMessage"]
