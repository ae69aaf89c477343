"""Which host interpreter and which runtime packages serve a Lambda runtime.

Settings (environment of the LocalStack process):

- ``LAMBDA_HOST_PYTHONS``: JSON object mapping a runtime to an interpreter path, merged over the
  defaults (pyenv's 3.13.0 and 3.12.1 under ``$PYENV_ROOT``, default ``~/.pyenv``).
- ``LAMBDA_HOST_RUNTIME_PACKAGES_DIR``: directory holding one folder per runtime
  (``<dir>/python3.13``) with the packages the managed runtime ships (boto3, botocore, ...).
- ``LAMBDA_HOST_WORK_DIR``: where execution environments keep their scratch space.
"""

import json
import os
import tempfile
from pathlib import Path

ENV_PYTHONS = "LAMBDA_HOST_PYTHONS"
ENV_RUNTIME_PACKAGES_DIR = "LAMBDA_HOST_RUNTIME_PACKAGES_DIR"
ENV_WORK_DIR = "LAMBDA_HOST_WORK_DIR"

PYENV_VERSIONS = {"python3.13": "3.13.0", "python3.12": "3.12.1"}


class UnsupportedRuntimeError(Exception):
    """The function's runtime cannot be served by a host interpreter."""


def _default_interpreters() -> dict[str, str]:
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    return {
        runtime: str(pyenv_root / "versions" / version / "bin" / runtime)
        for runtime, version in PYENV_VERSIONS.items()
    }


def interpreters() -> dict[str, str]:
    """Return the runtime -> interpreter mapping, defaults overridden by ``LAMBDA_HOST_PYTHONS``."""
    mapping = _default_interpreters()
    override = os.environ.get(ENV_PYTHONS)
    if override:
        mapping.update(json.loads(override))
    return mapping


def interpreter_for(runtime: str | None) -> str:
    """Return the interpreter for ``runtime`` or raise ``UnsupportedRuntimeError`` saying why."""
    mapping = interpreters()
    if runtime not in mapping:
        raise UnsupportedRuntimeError(
            f"Runtime {runtime!r} is not supported by the host executor "
            f"(supported: {', '.join(sorted(mapping))}; container images are not supported)"
        )
    path = mapping[runtime]
    if not os.access(path, os.X_OK):
        raise UnsupportedRuntimeError(
            f"Interpreter for runtime {runtime!r} not found or not executable: {path} "
            f"(install it or set {ENV_PYTHONS})"
        )
    return path


def runtime_packages_dir(runtime: str) -> Path | None:
    """Return the folder with the runtime's bundled packages (boto3), or None if not configured."""
    base = os.environ.get(ENV_RUNTIME_PACKAGES_DIR)
    if not base:
        return None
    path = Path(base) / runtime
    if not path.is_dir():
        raise UnsupportedRuntimeError(
            f"Runtime packages for {runtime!r} missing: {path} does not exist "
            f"(run `python localstack/server.py install`)"
        )
    return path


def work_dir() -> Path:
    """Return the root folder for execution environments' scratch space."""
    base = os.environ.get(ENV_WORK_DIR) or os.path.join(tempfile.gettempdir(), "localstack-host-executor")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
