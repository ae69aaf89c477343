"""Fixtures for the host executor's own tests: functions made from in-memory zip files.

``localstack_endpoint`` and ``aws_client`` (session) come from tests/conftest.py.
"""

import io
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from harness.localstack import FAST_WAITER
from harness.versions import layer_pins

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLE_ARN = "arn:aws:iam::000000000000:role/lambda-test-role"
PILLOW_VERSION = layer_pins()["pillow"]
LAYER_CACHE = REPO_ROOT / "build" / "localstack" / "test-cache"


def make_zip(files: dict[str, str | bytes]) -> bytes:
    """Return a zip archive (bytes) holding ``files`` (archive name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
def lambda_factory(aws_client):
    """Create functions (waiting until Active) and delete them, and their layers, afterwards."""
    lambda_client = aws_client("lambda")
    functions: list[str] = []
    layers: list[tuple[str, int]] = []

    def publish_layer(zip_bytes: bytes, runtime: str = "python3.13") -> str:
        name = f"layer-{uuid.uuid4().hex[:8]}"
        response = lambda_client.publish_layer_version(
            LayerName=name, Content={"ZipFile": zip_bytes}, CompatibleRuntimes=[runtime]
        )
        layers.append((name, response["Version"]))
        return response["LayerVersionArn"]

    def create(code: str, *, runtime: str = "python3.13", wait: bool = True, **kwargs) -> str:
        name = f"fn-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE_ARN,
            Handler="handler.lambda_handler",
            Code={"ZipFile": make_zip({"handler.py": code})},
            **kwargs,
        )
        functions.append(name)
        if wait:
            lambda_client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAITER)
        return name

    create.publish_layer = publish_layer
    create.client = lambda_client
    yield create
    from botocore.exceptions import ClientError

    for name in functions:
        try:
            lambda_client.delete_function(FunctionName=name)
        except ClientError as e:
            # LocalStack 2026.3.0 cannot delete a function whose creation Failed
            # ("Unable to find version manager"); nothing runs for it, so leave it.
            if "Unable to find version manager" not in str(e):
                raise
    for name, version in layers:
        lambda_client.delete_layer_version(LayerName=name, VersionNumber=version)


@pytest.fixture(scope="session")
def pillow_layer():
    """Factory: ``pillow_layer("3.13")`` returns a layer zip with Pillow for that CPython.

    The manylinux x86_64 wheel is fetched with ``pip download`` once and cached (zipped, under
    ``python/`` as Lambda expects) in build/localstack/test-cache.
    """

    def build(python_version: str) -> bytes:
        cached = LAYER_CACHE / f"pillow-{PILLOW_VERSION}-py{python_version}.zip"
        if cached.exists():
            return cached.read_bytes()
        download_dir = LAYER_CACHE / f"wheels-py{python_version}"
        download_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                python_version,
                "--platform",
                "manylinux_2_28_x86_64",
                "-d",
                str(download_dir),
                f"Pillow=={PILLOW_VERSION}",
            ],
            check=True,
        )
        tag = "cp" + python_version.replace(".", "")
        (wheel,) = download_dir.glob(f"pillow-{PILLOW_VERSION}-{tag}-{tag}-*.whl")
        files = {}
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    files[f"python/{info.filename}"] = archive.read(info)
        layer = make_zip(files)
        cached.write_bytes(layer)
        return layer

    return build
