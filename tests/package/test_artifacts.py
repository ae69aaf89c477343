"""Checks on the zips `sls package` deploys: the function package and the Pillow layer."""

import hashlib
import json
import subprocess
import zipfile

import pytest

from tests.package.conftest import REPO_ROOT

pytestmark = pytest.mark.package

# What the slimmed layer must still read and write (the thumbnailer's accepted formats).
KEPT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")


def _source_files() -> set[str]:
    files = {"handler.py"}
    for path in (REPO_ROOT / "thumbnailer").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.add(path.relative_to(REPO_ROOT).as_posix())
    return files


def _entries(archive_path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(archive_path) as archive:
        return [info for info in archive.infolist() if not info.is_dir()]


def test_function_zip_holds_exactly_the_handler_and_the_package(function_zip):
    names = {info.filename for info in _entries(function_zip)}

    assert names == _source_files()
    assert not {
        n for n in names if n.split("/")[0] in {"tests", "fixtures", "node_modules", "layer", "build"}
    }


def test_function_zip_is_reproducible(function_zip):
    entries = _entries(function_zip)

    assert [e.filename for e in entries] == sorted(e.filename for e in entries)
    assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}


def test_layer_zip_is_the_checked_build(layer_zip, layer_build_info, function):
    assert hashlib.sha256(layer_zip.read_bytes()).hexdigest() == layer_build_info["zip_sha256"]
    assert layer_build_info["runtime"] == function["Runtime"]
    assert [layer_build_info["architecture"]] == function["Architectures"]
    assert (
        layer_build_info["unzipped_bytes_after_slimming"] < layer_build_info["unzipped_bytes_before_slimming"]
    )


def test_layer_zip_is_reproducible_and_lambda_shaped(layer_zip):
    entries = _entries(layer_zip)
    names = [e.filename for e in entries]

    assert names == sorted(names)
    assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert all(name.startswith("python/") for name in names)
    assert "python/PIL/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyi"))]


@pytest.mark.parametrize(
    "dropped",
    [
        "PIL/_avif.",
        "pillow.libs/libavif-",
        "PIL/_imagingtk.",
        "PIL/ImageTk.py",
        "PIL/ImageQt.py",
        "PIL/_imagingft.",
    ],
)
def test_layer_zip_leaves_out_what_the_product_never_uses(layer_zip, dropped):
    assert not [e.filename for e in _entries(layer_zip) if e.filename.startswith(f"python/{dropped}")]


def test_layer_binaries_match_the_function_runtime_and_architecture(unzipped_layer, function, layer_builder):
    (arch,) = function["Architectures"]

    result = layer_builder.check(unzipped_layer, function["Runtime"], layer_builder.ARCHES[arch])

    assert result["imaging"] == f"_imaging.cpython-313-{layer_builder.ARCHES[arch].machine}-linux-gnu.so"


_PIL_PROBE = """
import io, json, sys
layer = sys.argv[1]
sys.path.insert(0, layer)
from PIL import Image, features
formats = sys.argv[2].split(",")
results = {}
for name in formats:
    image = Image.new("RGB", (40, 30), (200, 40, 90))
    buffer = io.BytesIO()
    image.save(buffer, format=name)
    buffer.seek(0)
    with Image.open(buffer, formats=[name]) as reopened:
        reopened.load()
        results[name] = [reopened.format, list(reopened.size)]
print(json.dumps({
    "pil_file": Image.__file__,
    "version": Image.__version__,
    "sys_path": sys.path,
    "formats": results,
    "webp": features.check("webp"),
    "freetype2": features.check("freetype2"),
    "avif": features.check("avif"),
}))
"""


def test_layer_pil_loads_alone_and_round_trips_every_accepted_format(unzipped_layer, lambda_python):
    result = subprocess.run(
        [lambda_python, "-I", "-S", "-c", _PIL_PROBE, str(unzipped_layer), ",".join(KEPT_FORMATS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)

    assert report["pil_file"].startswith(str(unzipped_layer) + "/")
    assert report["version"] == "13.0.0"
    # Only the standard library (and the layer) on the path: no site-packages Pillow could come from.
    assert not [p for p in report["sys_path"] if "site-packages" in p or "dist-packages" in p]
    assert report["formats"] == {name: [name, [40, 30]] for name in KEPT_FORMATS}
    assert report["webp"] is True
    assert report["freetype2"] is False
    assert report["avif"] is False


_CORE_PROBE = """
import io, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from PIL import Image
from thumbnailer.core import make_thumbnail
buffer = io.BytesIO()
Image.new("RGB", (1000, 600), (10, 120, 200)).save(buffer, format="JPEG")
thumb = make_thumbnail(buffer.getvalue())
print(json.dumps({"format": thumb.format, "size": [thumb.width, thumb.height]}))
"""


def test_function_package_makes_a_thumbnail_with_only_the_layer(
    function_zip, unzipped_layer, lambda_python, tmp_path
):
    function_dir = tmp_path / "task"
    with zipfile.ZipFile(function_zip) as archive:
        archive.extractall(function_dir)

    result = subprocess.run(
        [lambda_python, "-I", "-S", "-c", _CORE_PROBE, str(function_dir), str(unzipped_layer)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert json.loads(result.stdout) == {"format": "JPEG", "size": [128, 77]}
