"""pytest plugin of Docker mode: one session of its own, against LocalStack in a container.

`tox -e docker` runs ``pytest -p tests.docker.plugin tests/docker tests/integration``. The plugin

- points the session at the container (``LOCALSTACK_ENDPOINT=http://127.0.0.1:4599``) and sets
  ``LOCALSTACK_REUSE_ONLY=1``, so the shared ``localstack_endpoint`` fixture reuses the container and
  can never start a host-mode LocalStack on 127.0.0.1:4566;
- refuses host-mode tests (tests/localstack: they test our host executor, which the container lacks);
- skips tests/integration without ``LOCALSTACK_AUTH_TOKEN`` (the free image does not apply layers);
- starts the compose stack once for the session (autouse) and removes it at the end. No engine:
  every test skips with the reason, or fails if ``THUMBNAILER_DOCKER_REQUIRED=1``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker import container

SETTINGS_KEY = pytest.StashKey[container.Settings]()
SAVED_ENV_KEY = pytest.StashKey[dict[str, str | None]]()
SESSION_ENVIRONMENT = ("LOCALSTACK_ENDPOINT", "LOCALSTACK_REUSE_ONLY", "AWS_ENDPOINT_URL")
HOST_MODE_TESTS = container.REPO_ROOT / "tests" / "localstack"
END_TO_END_TESTS = container.REPO_ROOT / "tests" / "integration"
NO_TOKEN_REASON = (
    "needs LOCALSTACK_AUTH_TOKEN: the free LocalStack image does not apply Lambda layers, so the "
    "deployed function cannot import Pillow. Export LOCALSTACK_AUTH_TOKEN to run the end-to-end "
    "suite in Docker mode (host mode runs it without a token: make integration)"
)


def pytest_configure(config: pytest.Config) -> None:
    """Read the settings and point the session's LocalStack fixtures at the container."""
    try:
        settings = container.Settings.from_environment()
    except container.DockerModeError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    config.stash[SAVED_ENV_KEY] = {name: os.environ.get(name) for name in SESSION_ENVIRONMENT}
    os.environ["LOCALSTACK_ENDPOINT"] = settings.endpoint
    os.environ["LOCALSTACK_REUSE_ONLY"] = "1"
    os.environ.pop("AWS_ENDPOINT_URL", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the environment ``pytest_configure`` changed."""
    for name, value in config.stash.get(SAVED_ENV_KEY, {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_report_header(config: pytest.Config) -> str:
    """Say which mode, endpoint and image the session uses (never the token)."""
    settings = config.stash[SETTINGS_KEY]
    token = "set" if settings.token else "not set"
    return f"Docker mode: {settings.endpoint}, image {settings.image}, LOCALSTACK_AUTH_TOKEN {token}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse host-mode tests; skip the end-to-end suite without a token."""
    host_mode = [item.nodeid for item in items if Path(item.path).is_relative_to(HOST_MODE_TESTS)]
    if host_mode:
        raise pytest.UsageError(
            "host-mode tests never run in a Docker-mode session (they need our host executor and "
            f"127.0.0.1:4566); run them with `tox -e integration`: {', '.join(host_mode[:3])}"
        )
    if config.stash[SETTINGS_KEY].token:
        return
    skip = pytest.mark.skip(reason=NO_TOKEN_REASON)
    for item in items:
        if Path(item.path).is_relative_to(END_TO_END_TESTS):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def docker_localstack(pytestconfig: pytest.Config) -> Iterator[str]:
    """Endpoint of the container, healthy; the compose stack is removed after the session."""
    settings = pytestconfig.stash[SETTINGS_KEY]
    problem = container.engine_problem()
    if problem:
        if settings.required:
            pytest.fail(f"THUMBNAILER_DOCKER_REQUIRED=1 and Docker mode cannot run: {problem}", pytrace=False)
        pytest.skip(problem)
    stack = container.ComposeStack(settings)
    try:
        endpoint = stack.up()
    except container.DockerModeError as exc:
        with contextlib.suppress(container.DockerModeError):
            stack.down()
        pytest.fail(str(exc), pytrace=False)
    yield endpoint
    stack.down()
