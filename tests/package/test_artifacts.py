"""Checks on the zips `sls package` deploys: the function package and the Pillow layer."""

import hashlib
import importlib.util
import json
import subprocess
import zipfile

import pytest

from harness.versions import layer_pins, wheel_name
from tests.package.conftest import REPO_ROOT

pytestmark = pytest.mark.package

# What the slimmed layer must still read and write (the thumbnailer's accepted formats).
KEPT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Third-party files the layer alone must decode (source, licence, sha256: tests/package/data/README.md).
DATA_DIR = REPO_ROOT / "tests" / "package" / "data"
DECODED_FILES = {
    "RGB_8__29x100.heif": ["HEIF", "RGB", [29, 100]],  # HEVC-coded (brand heic): pillow-heif's libde265
    "hopper.avif": ["AVIF", "RGB", [128, 128]],  # AV1-coded: Pillow's _avif and libavif
}


def _source_files() -> set[str]:
    files = {"handler.py"}
    for path in (REPO_ROOT / "thumbnailer").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.add(path.relative_to(REPO_ROOT).as_posix())
    return files


def _entries(archive_path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(archive_path) as archive:
        return [info for info in archive.infolist() if not info.is_dir()]


def _expected_bytecode(files: dict[str, bytes], runtime: str) -> dict[str, bytes]:
    """{pyc name the runtime imports: the source it must be compiled from}, per .py in `files`."""
    tag = f"cpython-{runtime.removeprefix('python').replace('.', '')}"
    expected = {}
    for name, source in files.items():
        if name.endswith(".py"):
            directory, _, module = name.rpartition("/")
            expected[f"{directory}/__pycache__/{module[:-3]}.{tag}.pyc".lstrip("/")] = source
    return expected


def _assert_bytecode(archive_path, runtime: str, invalidation_flags: int) -> None:
    """Exactly one pyc per module, for the runtime, of the given kind, compiled from that source."""
    with zipfile.ZipFile(archive_path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    expected = _expected_bytecode(files, runtime)
    pycs = {name: data for name, data in files.items() if name.endswith(".pyc")}

    assert sorted(pycs) == sorted(expected)
    for name, pyc in pycs.items():
        assert pyc[:4] == importlib.util.MAGIC_NUMBER, f"{name}: not compiled by {runtime}"
        flags = int.from_bytes(pyc[4:8], "little")
        assert flags == invalidation_flags, f"{name}: invalidation flags {flags:#b}"
        assert pyc[8:16] == importlib.util.source_hash(expected[name]), f"{name}: stale"


def test_function_zip_holds_exactly_the_handler_the_package_and_their_bytecode(function_zip):
    names = {info.filename for info in _entries(function_zip)}

    assert {name for name in names if not name.endswith(".pyc")} == _source_files()
    assert not {
        n for n in names if n.split("/")[0] in {"tests", "fixtures", "node_modules", "layer", "build"}
    }


def test_function_zip_ships_checked_hash_bytecode(function_zip, function):
    """Checked against the source's hash at import: never stale, whatever the zip's mtimes."""
    _assert_bytecode(function_zip, function["Runtime"], invalidation_flags=0b11)


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
    assert not [n for n in names if n.endswith((".pyi", "py.typed"))]


def test_layer_ships_unchecked_hash_bytecode(layer_zip, function):
    """Never compared with the sources at import: nothing can change a published layer's sources."""
    _assert_bytecode(layer_zip, function["Runtime"], invalidation_flags=0b01)


@pytest.mark.parametrize(
    "dropped",
    [
        "PIL/_imagingtk.",
        "PIL/ImageTk.py",
        "PIL/ImageQt.py",
        "PIL/_imagingft.",
    ],
)
def test_layer_zip_leaves_out_what_the_product_never_uses(layer_zip, dropped):
    assert not [e.filename for e in _entries(layer_zip) if e.filename.startswith(f"python/{dropped}")]


@pytest.mark.parametrize(
    "kept",
    [
        "PIL/_avif.",
        "pillow.libs/libavif-",
        "PIL/AvifImagePlugin.py",
        "_pillow_heif.",
        "pillow_heif/HeifImagePlugin.py",
        "pillow_heif.libs/libheif-",
        "pillow_heif.libs/libde265-",
        f"{wheel_name('pillow-heif')}.dist-info/licenses/LICENSES_bundled.txt",  # libheif, libde265: LGPL-3.0
    ],
)
def test_layer_zip_keeps_the_avif_and_heif_decoders(layer_zip, kept):
    assert [e.filename for e in _entries(layer_zip) if e.filename.startswith(f"python/{kept}")]


def test_layer_binaries_match_the_function_runtime_and_architecture(
    unzipped_layer, function, layer_builder, layer_build_info
):
    (arch,) = function["Architectures"]

    result = layer_builder.check(unzipped_layer, function["Runtime"], layer_builder.ARCHES[arch])

    assert result["imaging"] == f"_imaging.cpython-313-{layer_builder.ARCHES[arch].machine}-linux-gnu.so"
    assert sorted(result["wheel_tags"]) == sorted(map(wheel_name, layer_pins()))
    # libheif and libde265 are C++: the layer needs Amazon Linux 2023's libstdc++, within its versions.
    assert {"GLIBC", "GLIBCXX", "CXXABI"} <= set(result["highest_symbol_versions"])
    assert layer_build_info["check"] == result


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
from pillow_heif import HeifImagePlugin  # registers the HEIF opener, as the core does for HEIF uploads
decoded = {}
for path in sys.argv[3:]:
    with Image.open(path) as image:
        image.load()
        decoded[path.rsplit("/", 1)[1]] = {
            "image": [image.format, image.mode, list(image.size)],
            "colours": len(image.getcolors(maxcolors=1 << 16) or ()),
        }
print(json.dumps({
    "pil_file": Image.__file__,
    "version": Image.__version__,
    "sys_path": sys.path,
    "formats": results,
    "webp": features.check("webp"),
    "freetype2": features.check("freetype2"),
    "avif": features.check("avif"),
    "decoded": decoded,
    "heif_files": [sys.modules[name].__file__ for name in ("pillow_heif", "_pillow_heif")],
    "libheif": sys.modules["pillow_heif"].libheif_info(),
}))
"""


def test_layer_pil_loads_alone_round_trips_every_accepted_format_and_decodes_heif_and_avif(
    unzipped_layer, lambda_python
):
    decoded_files = [str(DATA_DIR / name) for name in DECODED_FILES]
    probe = [lambda_python, "-I", "-S", "-c", _PIL_PROBE, str(unzipped_layer), ",".join(KEPT_FORMATS)]
    result = subprocess.run(
        [*probe, *decoded_files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)

    assert report["pil_file"].startswith(str(unzipped_layer) + "/")
    assert report["version"] == layer_pins()["pillow"]
    # Only the standard library (and the layer) on the path: no site-packages Pillow could come from.
    assert not [p for p in report["sys_path"] if "site-packages" in p or "dist-packages" in p]
    assert report["formats"] == {name: [name, [40, 30]] for name in KEPT_FORMATS}
    assert report["webp"] is True
    assert report["freetype2"] is False
    assert report["avif"] is True
    assert {name: found["image"] for name, found in report["decoded"].items()} == DECODED_FILES
    # Decoded pictures, not a blank canvas of the right size.
    assert all(found["colours"] > 100 for found in report["decoded"].values()), report["decoded"]
    assert all(path.startswith(str(unzipped_layer) + "/") for path in report["heif_files"])
    assert "libde265" in str(report["libheif"]["decoders"])


_CORE_PROBE = """
import io, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from PIL import Image
from thumbnailer.core import make_thumbnail
made = []
for format in ("JPEG", "PNG"):  # PNG takes the fast path: the layer's isal and libspng
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 600), (10, 120, 200)).save(buffer, format=format)
    thumb = make_thumbnail(buffer.getvalue())
    made.append({"format": thumb.format, "size": [thumb.width, thumb.height]})
import importlib.util
from thumbnailer.decoders import libspng
print(json.dumps({
    "thumbnails": made,
    "isal": sys.modules["isal"].__file__,
    "libspng": libspng.load() is not None,
    "pyspng": importlib.util.find_spec("pyspng").submodule_search_locations[0],
}))
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

    report = json.loads(result.stdout)

    assert report["thumbnails"] == [{"format": format, "size": [128, 77]} for format in ("JPEG", "PNG")]
    assert report["isal"].startswith(str(unzipped_layer) + "/")
    assert report["libspng"] is True  # PNG rows unfiltered by the layer's libspng, not Pillow's fallback
    assert report["pyspng"].startswith(str(unzipped_layer) + "/")
