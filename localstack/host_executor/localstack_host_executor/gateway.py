"""Hook that makes LocalStack's twisted gateway bind the host given in ``GATEWAY_LISTEN``.

LocalStack 2026.3.0's twisted server creates ``TCP4ServerEndpoint(reactor, port)`` without an
interface, so ``GATEWAY_LISTEN=127.0.0.1:4566`` still listens on 0.0.0.0. This hook runs when the
runtime is created (before the server binds) and passes the configured host along. Hypercorn
(``GATEWAY_SERVER=hypercorn``) binds correctly on its own but answers slower.
"""

import types

from localstack.runtime import hooks


@hooks.on_runtime_create()
def bind_gateway_to_listen_host() -> None:
    """Patch the twisted server module so IPv4 endpoints listen on the configured interface."""
    from localstack.runtime.server import twisted as twisted_server

    from localstack import config

    hosts = {listen.port: listen.host for listen in config.GATEWAY_LISTEN}
    endpoints = twisted_server.endpoints

    def tcp4_server_endpoint(reactor, port, backlog=50, interface=""):
        return endpoints.TCP4ServerEndpoint(
            reactor, port, backlog=backlog, interface=interface or hosts.get(port, "")
        )

    twisted_server.endpoints = types.SimpleNamespace(
        TCP4ServerEndpoint=tcp4_server_endpoint,
        TCP6ServerEndpoint=endpoints.TCP6ServerEndpoint,
    )
