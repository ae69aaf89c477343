"""Docker mode: LocalStack from localstack/docker-compose.yml through pytest-docker.

Skipped, with the reason, when pytest-docker is missing or no Docker engine answers (as on this
project's machines and CI). Override ``docker_compose_file`` / ``docker_compose_project_name``
in a conftest to point at another compose file or project.
"""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tools import stack as stack_tools

pytest.importorskip("pytest_docker", reason="pytest-docker is not installed (pip install pytest-docker)")

pytestmark = pytest.mark.docker

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "localstack" / "docker-compose.yml"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip unless a Docker engine answers ``docker info`` within 10 s."""
    if shutil.which("docker") is None:
        pytest.skip("No docker CLI on PATH: install Docker to run Docker-mode tests")
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("Docker engine did not answer `docker info` within 10 s")
    if result.returncode != 0:
        pytest.skip(
            "No Docker engine answers (`docker info` failed: "
            f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no output'}). "
            "Start dockerd or set DOCKER_HOST to run Docker-mode tests; host mode "
            "(`-m localstack`) covers the same Lambda behaviour without Docker."
        )


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    """The compose file pytest-docker starts (override to use another)."""
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    """Compose project name; the file's LAMBDA_DOCKER_NETWORK assumes this one."""
    return "thumbnailer-localstack"


@pytest.fixture(scope="session")
def docker_localstack(docker_engine, docker_services) -> str:
    """Endpoint of the LocalStack container, once its health check answers."""
    import urllib.request

    endpoint = "http://127.0.0.1:4566"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    docker_services.wait_until_responsive(check=healthy, timeout=180.0, pause=0.5)
    return endpoint


def test_docker_mode_runs_a_python_function(docker_localstack):
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(e, c):\n    return e\n")
    client = stack_tools.client("lambda", docker_localstack)
    name = f"docker-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Handler="handler.lambda_handler",
        Role="arn:aws:iam::000000000000:role/r",
        Code={"ZipFile": code.getvalue()},
    )
    try:
        client.get_waiter("function_active_v2").wait(FunctionName=name)
        response = client.invoke(FunctionName=name, Payload=json.dumps({"a": 1}).encode())
        assert json.loads(response["Payload"].read()) == {"a": 1}
    finally:
        client.delete_function(FunctionName=name)
