"""The Python interpreter that stands in for Lambda's runtime (or that LocalStack's venv needs).

No fixed path: the variable that overrides the choice, else this interpreter when it is the wanted
version, else `python<version>` on PATH (pyenv's shim picks it through .python-version).
"""

import os
import shutil
import subprocess
import sys

from harness.versions import python_version

LAMBDA_PYTHON_ENV = "THUMBNAILER_LAMBDA_PYTHON"
_PRINT_VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"


class PythonNotFound(LookupError):
    """No interpreter of the wanted version; the message says how to get one."""


def find_python(version: str, override_env: str) -> str:
    """Path of a Python `version` ("3.13"): $`override_env`, else sys.executable, else python<version>."""
    override = os.environ.get(override_env)
    candidates = [override] if override else [sys.executable, shutil.which(f"python{version}")]
    tried = []
    for candidate in filter(None, candidates):
        found = _version_of(candidate)
        if found == version:
            return candidate
        tried.append(f"{candidate} ({found or 'does not run'})")
    raise PythonNotFound(
        f"no Python {version} interpreter (tried: {', '.join(tried) or f'python{version} is not on PATH'}); "
        f"install it with `pyenv install {python_version()}` (.python-version selects it), "
        f"or set {override_env} to one"
    )


def lambda_python(runtime: str = "python3.13") -> str:
    """An interpreter of the Lambda `runtime`'s version; $THUMBNAILER_LAMBDA_PYTHON overrides."""
    return find_python(runtime.removeprefix("python"), LAMBDA_PYTHON_ENV)


def _version_of(interpreter: str) -> str | None:
    if interpreter == sys.executable:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        result = subprocess.run(
            [interpreter, "-c", _PRINT_VERSION], capture_output=True, text=True, timeout=30
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None
