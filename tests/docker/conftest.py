"""Fixtures of the Docker-mode tests; the container itself comes from tests/docker/plugin.py.

Outside a Docker-mode session (`tox -e docker`, which loads ``-p tests.docker.plugin``) every test
here skips: Docker mode never shares a pytest session, or a port, with host mode.
"""

import pytest

from harness import localstack

PLUGIN = "tests.docker.plugin"
OUTSIDE_DOCKER_SESSION = (
    "Docker mode runs in a pytest session of its own: `make docker` "
    "(tox -e docker, which loads -p tests.docker.plugin)"
)


@pytest.fixture(scope="session")
def docker_endpoint(request) -> str:
    """URL of Docker mode's LocalStack (127.0.0.1:4599), healthy; skips outside a Docker-mode session."""
    if not request.config.pluginmanager.has_plugin(PLUGIN):
        pytest.skip(OUTSIDE_DOCKER_SESSION)
    return request.getfixturevalue("docker_localstack")


@pytest.fixture(scope="session")
def docker_settings(request, docker_endpoint):
    """The session's ``container.Settings`` (port, image, whether a token is set)."""
    from tests.docker import plugin

    return request.config.stash[plugin.SETTINGS_KEY]


@pytest.fixture(scope="session")
def docker_client(docker_endpoint):
    """Factory: ``docker_client("lambda")`` is a boto3 client bound to the container."""

    def client(service: str):
        return localstack.client(service, docker_endpoint)

    return client
