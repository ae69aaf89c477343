"""Fixtures over the output of `npx sls package` (.serverless/) and the layer built by layer/build.py.

The artifacts are not built here: run `npx sls package --stage <stage>` first (tox -e package does).
Without them, or without a Python that stands in for Lambda's runtime, the tests skip; in CI and
under THUMBNAILER_PACKAGE_REQUIRED (set by tox -e package) they fail instead, naming the fix.
"""

import importlib.util
import json
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.cloudformation import Account, Resolver, policy_statements
from tests.support.tiers import PACKAGE_REQUIRED, unavailable
from tests.support.tiers import lambda_python as find_lambda_python

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVERLESS_DIR = REPO_ROOT / ".serverless"
TEMPLATE = SERVERLESS_DIR / "cloudformation-template-update-stack.json"
STATE = SERVERLESS_DIR / "serverless-state.json"
FUNCTION_LOGICAL_ID = "ThumbnailLambdaFunction"
LAYER_LOGICAL_ID = "PillowLambdaLayer"
BUCKET_LOGICAL_ID = "UploadBucket"
QUEUE_LOGICAL_ID = "ThumbnailFailureQueue"
HOST_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _require(path: Path) -> Path:
    if path.is_file():
        return path
    unavailable(
        f"{path.relative_to(REPO_ROOT)} missing",
        fix="run `npx sls package --stage prod` first (make package does)",
        variable=PACKAGE_REQUIRED,
    )


@pytest.fixture(scope="session")
def template() -> dict:
    """The compiled CloudFormation template of the last `sls package`."""
    return json.loads(_require(TEMPLATE).read_text())


@pytest.fixture(scope="session")
def resources(template) -> dict:
    """The template's Resources section."""
    return template["Resources"]


@pytest.fixture(scope="session")
def state() -> dict:
    """serverless-state.json: the resolved service configuration, with artifact paths."""
    return json.loads(_require(STATE).read_text())


@pytest.fixture(scope="session")
def function(resources) -> dict:
    """Properties of the thumbnail function."""
    return resources[FUNCTION_LOGICAL_ID]["Properties"]


@pytest.fixture(scope="session")
def layer(resources) -> dict:
    """Properties of the Pillow layer version."""
    return resources[LAYER_LOGICAL_ID]["Properties"]


@pytest.fixture(scope="session")
def resolver(template) -> Resolver:
    """The template as CloudFormation resolves it in account 123456789012, us-east-1, partition aws."""
    return Resolver(template, Account())


@pytest.fixture(scope="session")
def bucket_name(resources, resolver) -> str:
    """Name of the upload bucket the stack creates (resolved)."""
    return resolver.resolve(resources[BUCKET_LOGICAL_ID]["Properties"]["BucketName"])


@pytest.fixture(scope="session")
def role_statements(resources, resolver) -> list[dict]:
    """Statements of the function's execution role, resolved, with Action and Resource always lists."""
    return policy_statements(resources, resolver)


@pytest.fixture(scope="session")
def function_zip(state) -> Path:
    """The function's deployment package."""
    return _require(SERVERLESS_DIR / Path(state["package"]["artifact"]).name)


@pytest.fixture(scope="session")
def layer_zip(state) -> Path:
    """The Pillow layer artifact that serverless.yml deploys (written by layer/build.py)."""
    layers = state["service"]["layers"]
    if "$ref" in layers:  # serverless-state.json de-duplicates shared objects as JSONPath refs
        layers = state["service"]["initialServerlessConfig"]["layers"]
    artifact = Path(layers["pillow"]["package"]["artifact"])
    return _require(artifact if artifact.is_absolute() else REPO_ROOT / artifact)


@pytest.fixture(scope="session")
def layer_build_info(layer_zip) -> dict:
    """build/layer/<arch>/build-info.json written next to the layer zip."""
    return json.loads(_require(layer_zip.parent / "build-info.json").read_text())


@pytest.fixture(scope="session")
def layer_builder():
    """layer/build.py as a module (its ELF and ABI checks are reused, not re-implemented)."""
    spec = importlib.util.spec_from_file_location("layer_build", REPO_ROOT / "layer" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def unzipped_layer(layer_zip, tmp_path_factory) -> Path:
    """The layer zip extracted as Lambda would mount it at /opt; returns its python/ dir."""
    root = tmp_path_factory.mktemp("opt")
    with zipfile.ZipFile(layer_zip) as archive:
        archive.extractall(root)
    return root / "python"


@pytest.fixture(scope="session")
def lambda_python(function) -> str:
    """A host interpreter of the function's runtime that can load the layer's binaries.

    harness.interpreters finds it (THUMBNAILER_LAMBDA_PYTHON overrides); missing, the tests skip,
    or fail when required. A layer built for another architecture cannot load here at all: skipped.
    """
    host = HOST_MACHINES.get(platform.machine().lower(), platform.machine())
    (arch,) = function["Architectures"]
    if host != arch:
        pytest.skip(f"layer is built for {arch}, this host is {host}: its binaries cannot load here")
    return find_lambda_python(function["Runtime"])


PACKAGE_TIMEOUT_S = 300


def sls_package(directory: Path, *options: str) -> subprocess.CompletedProcess:
    """`npx sls package` into `directory` with `options`, leaving .serverless/ as it was.

    The framework empties .serverless/ before every package, --package or not: the main package
    the other tests read is moved aside for the call and put back afterwards.
    """
    kept = directory.parent / f"{directory.name}-kept-serverless"
    if SERVERLESS_DIR.exists():
        shutil.copytree(SERVERLESS_DIR, kept)
    try:
        return subprocess.run(
            ["npx", "--no-install", "sls", "package", "--package", str(directory), *options],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=PACKAGE_TIMEOUT_S,
        )
    finally:
        if kept.exists():
            shutil.rmtree(SERVERLESS_DIR, ignore_errors=True)
            shutil.move(kept, SERVERLESS_DIR)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory):
    """Callable: the compiled template and resolved state of `sls package` with `options` (cached)."""
    cache = {}

    def package(*options: str) -> dict:
        if options not in cache:
            directory = tmp_path_factory.mktemp("sls-package")
            result = sls_package(directory, *options)
            assert result.returncode == 0, result.stdout + result.stderr
            cache[options] = {
                "template": json.loads((directory / "cloudformation-template-update-stack.json").read_text()),
                "state": json.loads((directory / "serverless-state.json").read_text()),
            }
        return cache[options]

    return package
