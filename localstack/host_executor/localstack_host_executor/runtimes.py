"""Which host interpreter and which runtime packages serve a Lambda runtime.

Settings (environment of the LocalStack process):

- ``LAMBDA_HOST_PYTHONS``: JSON object mapping a runtime to an interpreter path, merged over the
  defaults (pyenv's 3.13.0 and 3.12.1 under ``$PYENV_ROOT``, default ``~/.pyenv``).
- ``LAMBDA_HOST_RUNTIME_PACKAGES_DIR``: directory holding one folder per runtime
  (``<dir>/python3.13``) with the packages the managed runtime ships (boto3, botocore, ...).
- ``LAMBDA_HOST_WORK_DIR``: where execution environments keep their scratch space.
- ``LAMBDA_HOST_INIT_TIMEOUT_S``: the init phase's limit (default 10 s, as on AWS).
"""

import json
import logging
import os
import subprocess
import tempfile
import threading
from pathlib import Path

LOG = logging.getLogger(__name__)

ENV_PYTHONS = "LAMBDA_HOST_PYTHONS"
ENV_RUNTIME_PACKAGES_DIR = "LAMBDA_HOST_RUNTIME_PACKAGES_DIR"
ENV_WORK_DIR = "LAMBDA_HOST_WORK_DIR"
ENV_INIT_TIMEOUT = "LAMBDA_HOST_INIT_TIMEOUT_S"
DEFAULT_INIT_TIMEOUT_S = 10.0
INSTALL_STAMP = ".installed"

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


_compile_lock = threading.Lock()


def compile_runtime_packages(runtime: str, interpreter: str) -> None:
    """Byte-compile the runtime's packages for its own interpreter, once per install.

    The folder is read-only for functions (as ``/var/runtime`` is on AWS), so the runtime cannot
    write its bytecode there itself; pip compiled it for LocalStack's Python only.
    """
    packages = runtime_packages_dir(runtime)
    if packages is None:
        return
    stamp = packages / f".compiled-{runtime}"
    installed = packages / INSTALL_STAMP
    key = installed.read_text() if installed.exists() else ""
    with _compile_lock:
        if stamp.exists() and stamp.read_text() == key:
            return
        LOG.info("Byte-compiling %s for %s", packages, interpreter)
        subprocess.run(
            [interpreter, "-I", "-m", "compileall", "-q", "-j", "0", str(packages)],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stamp.write_text(key)


def init_timeout_s() -> float:
    """Seconds the init phase may take before it is cut and retried in the first invocation."""
    return float(os.environ.get(ENV_INIT_TIMEOUT) or DEFAULT_INIT_TIMEOUT_S)


def work_dir() -> Path:
    """Return the root folder for execution environments' scratch space."""
    base = os.environ.get(ENV_WORK_DIR) or os.path.join(tempfile.gettempdir(), "localstack-host-executor")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
