"""Host-mode LocalStack (localstack/server.py) and boto3 clients bound to a LocalStack endpoint."""

import importlib.util
import sys
from types import ModuleType

from harness import REPO_ROOT

SERVER_PY = REPO_ROOT / "localstack" / "server.py"
REGION = "us-east-1"
# LocalStack accepts any credentials; these keep every client away from a real account.
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
_MODULE_NAME = "localstack_host_server"
# LocalStack makes a function Active, or applies an update, within milliseconds; botocore's Lambda
# waiters ask once a second. Pass this as `WaiterConfig` to ask every 50 ms (for at most a minute).
FAST_WAITER = {"Delay": 0.05, "MaxAttempts": 1200}


def server() -> ModuleType:
    """localstack/server.py as a module, loaded by path: the folder's name would shadow localstack-core."""
    if _MODULE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, SERVER_PY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module  # dataclasses resolve annotations through sys.modules
        spec.loader.exec_module(module)
    return sys.modules[_MODULE_NAME]


def client(service: str, endpoint: str, *, max_pool_connections: int = 10):
    """A boto3 client for `service` bound to the LocalStack at `endpoint`, with fake credentials."""
    import boto3

    from ops.aws import client_config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        config=client_config(max_pool_connections),
        **CREDENTIALS,
    )
