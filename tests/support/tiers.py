"""What a test tier needs from the machine: when it is missing the tier skips, unless it is required.

A tier is required in CI (CI set) and when its own variable is set, as its tox environment does
(THUMBNAILER_CORPUS_REQUIRED, THUMBNAILER_CHROMIUM_REQUIRED, THUMBNAILER_PACKAGE_REQUIRED); then
a missing prerequisite fails, naming the fix, so that no tier passes having checked nothing.
"""

import os
import shutil
from typing import NoReturn

import pytest

from harness.interpreters import PythonNotFound
from harness.interpreters import lambda_python as find_lambda_python

CHROMIUM_REQUIRED = "THUMBNAILER_CHROMIUM_REQUIRED"
PACKAGE_REQUIRED = "THUMBNAILER_PACKAGE_REQUIRED"
CORPUS_REQUIRED = "THUMBNAILER_CORPUS_REQUIRED"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_OFF = {"", "0", "false", "no"}


def required(variable: str) -> bool:
    """True in CI and when `variable` is set (to anything but 0, false or no)."""
    return any(os.environ.get(name, "").strip().lower() not in _OFF for name in ("CI", variable))


def unavailable(problem: str, *, fix: str, variable: str) -> NoReturn:
    """Fail when the tier is required, else skip; either way the message says the fix."""
    if required(variable):
        pytest.fail(f"{problem}: {fix} (required here: CI or {variable} is set)", pytrace=False)
    pytest.skip(f"{problem}: {fix}")


def chromium() -> str:
    """$CHROMIUM, else the first usual Chromium or Chrome name on PATH."""
    configured = os.environ.get("CHROMIUM")
    binary = (
        shutil.which(configured)
        if configured
        else next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    )
    if binary is None:
        looked = f"$CHROMIUM={configured}" if configured else f"{', '.join(CHROMIUM_NAMES)} on PATH"
        unavailable(
            f"no Chromium binary ({looked})",
            fix="run `make browser` (Debian: apt-get install chromium) or set CHROMIUM to its path",
            variable=CHROMIUM_REQUIRED,
        )
    return binary


def lambda_python(runtime: str) -> str:
    """An interpreter of the Lambda `runtime`'s Python version (harness.interpreters)."""
    try:
        return find_lambda_python(runtime)
    except PythonNotFound as exc:
        fix = str(exc)
    unavailable(f"nothing stands in for Lambda's {runtime}", fix=fix, variable=PACKAGE_REQUIRED)
