"""Docker mode's LocalStack: localstack/docker-compose.yml on its own port, through the docker CLI.

Used by the pytest plugin of `tox -e docker` (tests/docker/plugin.py), and by hand::

    python -m tests.docker.container up      # start, wait until healthy, print the endpoint
    python -m tests.docker.container down    # stop and remove the containers, network and volumes

Settings (environment): ``THUMBNAILER_DOCKER_PORT`` (default 4599; host mode's 4566 is refused),
``LOCALSTACK_AUTH_TOKEN`` (passed to the container through the environment of `docker compose`,
never on a command line), ``LOCALSTACK_DOCKER_IMAGE`` (default: the free image, or the Pro image
when a token is set), ``THUMBNAILER_DOCKER_REQUIRED=1`` (no engine is an error, not a skip).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness import REPO_ROOT, localstack
from harness.waiting import wait_until

COMPOSE_FILE = REPO_ROOT / "localstack" / "docker-compose.yml"
PROJECT = "thumbnailer-docker"
DEFAULT_PORT = 4599
HOST_MODE_PORT = 4566
FREE_IMAGE = "localstack/localstack:4.14.0"
TOKEN_IMAGE = "localstack/localstack-pro:4.14.0"
HEALTH_TIMEOUT_S = 240.0
ENGINE_TIMEOUT_S = 10.0


class DockerModeError(RuntimeError):
    """Docker mode cannot run: bad settings, no engine, or the container did not become healthy."""


@dataclass(frozen=True)
class Settings:
    """Where and how Docker mode's LocalStack runs; ``token`` is never shown in a repr."""

    port: int
    image: str
    token: str | None = field(default=None, repr=False)
    required: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; raises ``DockerModeError`` for a port Docker mode must not use."""
        environ = os.environ if environ is None else environ
        try:
            port = int(environ.get("THUMBNAILER_DOCKER_PORT") or DEFAULT_PORT)
        except ValueError:
            raise DockerModeError(
                f"THUMBNAILER_DOCKER_PORT={environ['THUMBNAILER_DOCKER_PORT']!r} is not a port number"
            ) from None
        if port == HOST_MODE_PORT:
            raise DockerModeError(
                f"THUMBNAILER_DOCKER_PORT={port} is host mode's port; Docker mode never shares it "
                f"(unset it for {DEFAULT_PORT})"
            )
        token = environ.get("LOCALSTACK_AUTH_TOKEN") or None
        image = environ.get("LOCALSTACK_DOCKER_IMAGE") or (TOKEN_IMAGE if token else FREE_IMAGE)
        required = environ.get("THUMBNAILER_DOCKER_REQUIRED", "").strip().lower() in {"1", "true", "yes"}
        return cls(port=port, image=image, token=token, required=required)

    @property
    def endpoint(self) -> str:
        """URL of the gateway on this host."""
        return f"http://127.0.0.1:{self.port}"

    def compose_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for `docker compose`: the compose file reads port, image and token from it."""
        env = dict(os.environ if base is None else base)
        env.pop("LOCALSTACK_AUTH_TOKEN", None)
        env.update(THUMBNAILER_DOCKER_PORT=str(self.port), LOCALSTACK_DOCKER_IMAGE=self.image)
        if self.token:
            env["LOCALSTACK_AUTH_TOKEN"] = self.token
        return env


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S, check=False
    )


def engine_problem() -> str | None:
    """None if a Docker engine and the compose plugin answer, else what is missing and what to do."""
    if shutil.which("docker") is None:
        return "No docker CLI on PATH: install Docker (engine and compose plugin) to run Docker mode"
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}")
    except subprocess.TimeoutExpired:
        return f"The Docker engine did not answer `docker info` within {ENGINE_TIMEOUT_S:.0f} s"
    if info.returncode != 0:
        last_line = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            f"No Docker engine answers (`docker info`: {last_line}). Start dockerd or set DOCKER_HOST "
            "to run Docker mode; host mode (`make integration`) covers the same behaviour without Docker"
        )
    try:
        compose = _docker("compose", "version")
    except subprocess.TimeoutExpired:
        return f"`docker compose version` did not answer within {ENGINE_TIMEOUT_S:.0f} s"
    if compose.returncode != 0:
        return "`docker compose` is missing: install the Docker Compose v2 plugin to run Docker mode"
    return None


def is_healthy(endpoint: str) -> bool:
    """True if ``endpoint`` answers LocalStack's health check (localstack/server.py's, the one check)."""
    return localstack.server().is_healthy(endpoint)


def port_in_use(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:``port``."""
    return localstack.server().port_in_use(f"127.0.0.1:{port}")


class ComposeStack:
    """The compose project ``thumbnailer-docker`` built from ``localstack/docker-compose.yml``."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def command(self, *args: str) -> list[str]:
        """`docker compose` with our file and project name, then ``args``."""
        return ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", PROJECT, *args]

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args),
            env=self.settings.compose_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> str:
        """Start the container, wait until the endpoint is healthy, return it.

        Raises ``DockerModeError`` (with the container's log) if it does not become healthy.
        """
        if port_in_use(self.settings.port) and not is_healthy(self.settings.endpoint):
            raise DockerModeError(
                f"127.0.0.1:{self.settings.port} is taken by something that is not LocalStack; "
                "free it or set THUMBNAILER_DOCKER_PORT"
            )
        result = self._run("up", "--detach", "--wait", timeout=HEALTH_TIMEOUT_S + 60)
        if result.returncode != 0:
            raise DockerModeError(
                f"`docker compose up` failed ({result.returncode}):\n{result.stderr[-3000:]}\n{self.logs()}"
            )
        try:
            wait_until(
                lambda: is_healthy(self.settings.endpoint),
                deadline_s=HEALTH_TIMEOUT_S,
                what=f"{self.settings.endpoint} healthy",
                poll_s=1,
            )
        except TimeoutError as exc:
            raise DockerModeError(f"{exc}:\n{self.logs()}") from None
        return self.settings.endpoint

    def logs(self, lines: int = 80) -> str:
        """The end of the container's log (for error messages)."""
        result = self._run("logs", "--no-color", "--tail", str(lines), timeout=60)
        return result.stdout[-6000:] or result.stderr[-2000:]

    def down(self) -> None:
        """Remove containers, network and volumes; raises ``DockerModeError`` if the port stays taken."""
        result = self._run("down", "--volumes", "--remove-orphans", timeout=180)
        if result.returncode != 0:
            raise DockerModeError(
                f"`docker compose down` failed ({result.returncode}):\n{result.stderr[-3000:]}"
            )
        try:
            wait_until(
                lambda: not port_in_use(self.settings.port), deadline_s=10, what="port free", poll_s=0.2
            )
        except TimeoutError:
            raise DockerModeError(
                f"127.0.0.1:{self.settings.port} still in use after `docker compose down`"
            ) from None


def main(argv: list[str] | None = None) -> int:
    """CLI: ``up`` or ``down``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    command = parser.parse_args(argv).command
    try:
        settings = Settings.from_environment()
        problem = engine_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        stack = ComposeStack(settings)
        if command == "up":
            print(json.dumps({"endpoint": stack.up(), "image": settings.image}))
        else:
            stack.down()
    except DockerModeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
