"""The versions this project pins once, read where they are kept."""

import re
from functools import cache

from harness import REPO_ROOT

PYTHON_VERSION_FILE = REPO_ROOT / ".python-version"
LAYER_REQUIREMENTS = REPO_ROOT / "layer" / "requirements.txt"


def python_version() -> str:
    """The CPython release the project runs on and Lambda's runtime matches (.python-version: 3.13.0)."""
    return PYTHON_VERSION_FILE.read_text().split()[0]


@cache
def layer_pins() -> dict[str, str]:
    """{distribution: version} of the layer's packages (layer/requirements.txt, `name==version`)."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", LAYER_REQUIREMENTS.read_text(), re.MULTILINE)
    return {name.lower(): version for name, version in pins}


def wheel_name(distribution: str) -> str:
    """`name-version` as a wheel or dist-info of a layer package is named (pillow_heif-1.8.1)."""
    return f"{re.sub(r'[-_.]+', '_', distribution)}-{layer_pins()[distribution]}"
