"""Build the Pillow Lambda layer for one runtime and architecture, from any host.

    python layer/build.py --runtime python3.13 --arch x86_64     # or --arch arm64

Installs the hash-pinned wheels of layer/requirements.txt for the Lambda platform (never the host's),
drops what the thumbnailer never uses, compiles the modules' bytecode (Lambda's /opt is read-only: without
it every cold start compiles what it imports), checks that every wheel and compiled module matches the
runtime and the architecture, that no shared library lost a dependency and that none needs a newer glibc or
libstdc++ symbol version than Lambda's Amazon Linux 2023 has, then writes a deterministic zip:

    build/layer/<arch>/python/...            the unzipped layer (Lambda mounts it at /opt), with bytecode
    build/layer/<arch>/pillow-layer.zip      the artifact serverless.yml deploys
    build/layer/<arch>/build-info.json       inputs digest, sizes before/after slimming, zip sha256, and
                                             what the checks found (wheel tags, highest symbol versions)

A rebuild is skipped when the inputs (this file, requirements.txt, runtime, arch) are unchanged; the
checks run every time. `--check-only` runs only the checks. `--function-code ZIP` also compiles the
function's modules (handler.py, thumbnailer/) to bytecode and zips them with it into ZIP, the
package `sls package` ships; the Serverless plugin next to this file passes serverless.yml's
`package.artifact`. Exit status is non-zero on any failure.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import logging
import os
import py_compile
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

LAYER_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAYER_DIR.parent
REQUIREMENTS = LAYER_DIR / "requirements.txt"
ZIP_NAME = "pillow-layer.zip"
INFO_NAME = "build-info.json"
# What serverless.yml's package.patterns ship as the function's code, with its bytecode.
FUNCTION_CODE = ("handler.py", "thumbnailer")

# Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34); the cp313 wheels of Pillow 13 and
# pillow-heif 1.8 are manylinux_2_27/manylinux_2_28 (aarch64: _2_26/_2_28), isal's manylinux_2_17/_2_28.
# pip matches --platform literally, so name the tag all of them carry.
MAX_GLIBC = (2, 34)
WHEEL_PLATFORM = "manylinux_2_28_{machine}"
# PEP 600's names for the older manylinux tags.
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclass(frozen=True)
class Arch:
    """A Lambda architecture as named by Lambda, by the wheel/ABI tags and by the ELF header."""

    lambda_name: str
    machine: str
    elf_machine: int


ARCHES = {
    "x86_64": Arch("x86_64", "x86_64", 62),  # EM_X86_64
    "arm64": Arch("arm64", "aarch64", 183),  # EM_AARCH64
}

# Libraries Lambda's Amazon Linux 2023 base provides; everything else must ship in the layer.
SYSTEM_LIBS = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",  # glibc's vector maths (x86_64 only, from glibc 2.22): pillow-heif's libx265 uses it
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libz.so.1",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    }
)

# The newest symbol version of each family that Amazon Linux 2023's SYSTEM_LIBS define: glibc 2.34 (libc,
# libm, libmvec, libpthread, libdl, librt, the loader), GCC 11's libstdc++ (GLIBCXX_3.4.29, CXXABI_1.3.13) and
# libgcc_s (whose versions are named after the GCC release that added them), zlib 1.2.11. A shared object
# needing a newer one does not load there: "version `GLIBC_2.35' not found".
RUNTIME_SYMBOL_VERSIONS = {
    "GLIBC": MAX_GLIBC,
    "GLIBCXX": (3, 4, 29),
    "CXXABI": (1, 3, 13),
    "GCC": (11, 0, 0),
    "ZLIB": (1, 2, 11),
}

# What the thumbnailer never uses (it decodes JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF (Pillow's _avif and
# libavif) and HEIF/HEIC (pillow-heif); no text, no GUI). Globs are relative to the layer's python/ dir. The
# Python plugin stubs of dropped codecs stay: Pillow imports them lazily and marks the format unsupported.
DROP_PATTERNS = (
    # Tk and Qt bindings
    "PIL/_imagingtk.*.so",
    "PIL/ImageTk.py",
    "PIL/_tkinter_finder.py",
    "PIL/ImageQt.py",
    # FreeType text rendering and what only it links (harfbuzz, brotli, libpng: _imaging has its own
    # zlib-based PNG codec)
    "PIL/_imagingft.*.so",
    "pillow.libs/libfreetype-*",
    "pillow.libs/libharfbuzz-*",
    "pillow.libs/libbrotlicommon-*",
    "pillow.libs/libbrotlidec-*",
    "pillow.libs/libpng16-*",
    # ISA-L's documents but its licence, and isal's gzip tools (the thumbnailer only uses isal_zlib)
    "isal/isa-l/*.md",
    "isal/isa-l/*.txt",
    "isal/igzip.py",
    "isal/igzip_threaded.py",
    # type stubs, and any bytecode but compile_bytecode()'s: Lambda never type-checks
    "*/*.pyi",
    "*/py.typed",
    "**/__pycache__",
)

LOGGER = logging.getLogger("layer.build")


class LayerCheckError(Exception):
    """The layer does not fit the function's runtime or architecture, or lost a dependency."""


def python_version(runtime: str) -> tuple[int, int]:
    """Return (major, minor) of a Lambda runtime name such as ``python3.13``."""
    match = re.fullmatch(r"python(\d)\.(\d+)", runtime)
    if not match:
        raise LayerCheckError(f"unsupported runtime {runtime!r}: expected pythonX.Y")
    return int(match.group(1)), int(match.group(2))


def tree_size(root: Path) -> int:
    """Return the total size in bytes of the regular files under root."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def inputs_digest(runtime: str, arch: Arch) -> str:
    """Digest of everything that determines the layer's content."""
    digest = hashlib.sha256()
    for part in (
        Path(__file__).resolve().read_bytes(),
        REQUIREMENTS.read_bytes(),
        runtime.encode(),
        arch.machine.encode(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def install(target: Path, runtime: str, arch: Arch) -> None:
    """pip-install the pinned wheels for the Lambda platform into target (a fresh directory)."""
    major, minor = python_version(runtime)
    command = [
        sys.executable, "-m", "pip", "install",
        "--disable-pip-version-check", "--no-input", "--quiet", "--root-user-action=ignore",
        "--require-hashes", "--no-deps", "-r", str(REQUIREMENTS),
        "--platform", WHEEL_PLATFORM.format(machine=arch.machine),
        "--implementation", "cp",
        "--python-version", f"{major}.{minor}",
        "--abi", f"cp{major}{minor}",
        "--only-binary=:all:",
        "--no-compile",
        "--target", str(target),
    ]  # fmt: skip
    LOGGER.info("pip install", extra={"fields": {"command": command}})
    subprocess.run(command, check=True)


def slim(root: Path) -> list[str]:
    """Delete DROP_PATTERNS under root; return the removed paths (relative, sorted)."""
    removed = []
    for pattern in DROP_PATTERNS:
        for path in sorted(root.glob(pattern)):
            removed.append(path.relative_to(root).as_posix())
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    return sorted(removed)


def compile_bytecode(
    paths: list[Path], runtime: str, ddir: str, mode: py_compile.PycInvalidationMode
) -> None:
    """Compile the modules under `paths` for the runtime into their __pycache__ directories.

    Lambda's /opt and /var/task are read-only: without shipped bytecode, every cold start compiles
    each module it imports (the cold start benchmark measures what this saves). Hash-based pycs
    hold no mtimes, which keeps the zips reproducible and survives zips that reset every mtime.
    """
    host, target = sys.version_info[:2], python_version(runtime)
    if host != target:
        raise LayerCheckError(
            f"the bytecode for {runtime} must be compiled by Python {target[0]}.{target[1]}, not "
            f"{host[0]}.{host[1]}: run this script with that Python (or set LAYER_BUILD_PYTHON for sls)"
        )
    for path in paths:
        if path.is_dir():
            compiled = compileall.compile_dir(
                path, ddir=f"{ddir}/{path.name}", quiet=1, invalidation_mode=mode
            )
        else:
            compiled = compileall.compile_file(path, ddir=ddir, quiet=1, invalidation_mode=mode)
        if not compiled:
            raise LayerCheckError(f"compiling {path} failed")


def compile_function_code(service_dir: Path, runtime: str, destination: Path) -> None:
    """Compile FUNCTION_CODE from scratch and zip it with its bytecode: the package `sls` deploys.

    Checked-hash pycs: Python compares each with its source's hash, so a stale one is never used,
    neither in this working tree nor on Lambda. Old caches go first, so none of a deleted module ships.
    The zip (`destination`, serverless.yml's `package.artifact`) holds exactly the sources and their
    pycs for the runtime, sorted, with fixed times: the framework's own packaging would walk the
    whole working tree (node_modules, build/, .tox) to find them, about 2 s a package.
    """
    paths = [service_dir / name for name in FUNCTION_CODE]
    for path in paths:
        if path.is_dir():
            caches = path.glob("**/__pycache__/*.pyc")
        else:
            caches = path.parent.glob(f"__pycache__/{path.stem}.*.pyc")
        for stale in list(caches):
            stale.unlink()
    compile_bytecode(paths, runtime, "/var/task", py_compile.PycInvalidationMode.CHECKED_HASH)
    tag = f"cpython-{''.join(map(str, python_version(runtime)))}"
    files = []
    for path in paths:
        if path.is_dir():
            files += [file for file in path.rglob("*") if file.is_file()]
        else:
            files += [path, path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc"]
    entries = {
        path.relative_to(service_dir).as_posix(): path
        for path in files
        if path.parent.name != "__pycache__" or path.name.endswith(f".{tag}.pyc")
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    _write_zip(entries, destination)


SHT_DYNAMIC = 6
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
VER_FLG_BASE = 1  # the Elf64_Verdef entry naming the file itself, not a version


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic loader needs of a shared object, as its section headers describe it."""

    machine: int
    needed: tuple[str, ...]  # DT_NEEDED library names
    version_needs: tuple[tuple[str, str], ...]  # (library, symbol version), from .gnu.version_r
    version_defs: frozenset[str]  # the symbol versions it defines, from .gnu.version_d


def _c_string(data: bytes, offset: int) -> str:
    return data[offset : data.index(b"\0", offset)].decode()


def elf_info(path: Path) -> ElfInfo:
    """Read the ELF machine, DT_NEEDED and GNU symbol versions of a 64-bit little-endian shared object."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise LayerCheckError(f"{path.name}: not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise LayerCheckError(f"{path.name}: not a 64-bit little-endian ELF file")
    (e_machine,) = struct.unpack_from("<H", data, 18)
    (e_shoff,) = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    if not e_shoff or not e_shnum:
        raise LayerCheckError(f"{path.name}: no section headers to read its dependencies from")
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    needed, version_needs, version_defs = [], [], set()
    for _name, sh_type, _flags, _addr, offset, size, link, entries, *_ in sections:
        strings = sections[link][4]  # offset of the section's string table (.dynstr)
        if sh_type == SHT_DYNAMIC:
            for pos in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, pos)
                if tag == 0:  # DT_NULL
                    break
                if tag == 1:  # DT_NEEDED
                    needed.append(_c_string(data, strings + value))
        elif sh_type == SHT_GNU_VERNEED:  # sh_info Elf64_Verneed entries, each with vn_cnt Elf64_Vernaux
            pos = offset
            for _ in range(entries):
                _version, count, file_name, aux, next_entry = struct.unpack_from("<HHIII", data, pos)
                library = _c_string(data, strings + file_name)
                aux_pos = pos + aux
                for _ in range(count):
                    _hash, _flags, _other, version, next_aux = struct.unpack_from("<IHHII", data, aux_pos)
                    version_needs.append((library, _c_string(data, strings + version)))
                    aux_pos += next_aux
                pos += next_entry
        elif sh_type == SHT_GNU_VERDEF:  # sh_info Elf64_Verdef entries; their first Elf64_Verdaux names them
            pos = offset
            for _ in range(entries):
                _version, flags, _index, _count, _hash, aux, next_entry = struct.unpack_from(
                    "<HHHHIII", data, pos
                )
                if not flags & VER_FLG_BASE:
                    (version,) = struct.unpack_from("<I", data, pos + aux)
                    version_defs.add(_c_string(data, strings + version))
                pos += next_entry
    return ElfInfo(e_machine, tuple(needed), tuple(version_needs), frozenset(version_defs))


def symbol_version(name: str) -> tuple[str, tuple[int, ...]] | None:
    """Split a symbol version such as ``GLIBCXX_3.4.29`` into its family and number; None if unnumbered."""
    match = re.fullmatch(r"([A-Z][A-Z0-9_]*?)_(\d+(?:\.\d+)*)", name)
    if not match:
        return None
    return match.group(1), tuple(int(part) for part in match.group(2).split("."))


def _version_name(family: str, number: tuple[int, ...]) -> str:
    return f"{family}_{'.'.join(map(str, number))}"


def _padded(number: tuple[int, ...]) -> tuple[int, ...]:
    return number + (0,) * (4 - len(number))


def _python_fits(interpreter: str, abi: str, major: int, minor: int) -> bool:
    if abi == f"cp{major}{minor}":
        return interpreter == f"cp{major}{minor}"
    if abi == "abi3":
        match = re.fullmatch(rf"cp{major}(\d+)", interpreter)
        return bool(match) and int(match.group(1)) <= minor
    return abi == "none" and interpreter in {f"py{major}", f"py{major}{minor}", f"cp{major}{minor}"}


def _platform_fits(platform: str, machine: str) -> bool:
    if platform == "any":
        return True
    match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{machine}", platform)
    if match:
        return (int(match.group(1)), int(match.group(2))) <= MAX_GLIBC
    legacy, _, legacy_machine = platform.partition("_")
    return legacy in LEGACY_MANYLINUX and legacy_machine == machine and LEGACY_MANYLINUX[legacy] <= MAX_GLIBC


def wheel_tag_fits(tag: str, runtime: str, arch: Arch) -> bool:
    """Whether a wheel tag (``cp313-cp313-manylinux_2_28_x86_64``, ``py3-none-any``) suits runtime/arch."""
    major, minor = python_version(runtime)
    parts = tag.split("-")
    if len(parts) != 3:
        return False
    interpreters, abis, platforms = (part.split(".") for part in parts)  # compressed tag sets
    return any(
        _python_fits(interpreter, abi, major, minor) and _platform_fits(platform, arch.machine)
        for interpreter in interpreters
        for abi in abis
        for platform in platforms
    )


def check_wheels(root: Path, runtime: str, arch: Arch) -> dict[str, list[str]]:
    """Fail unless every installed wheel has a tag that suits runtime/arch; return {wheel: those tags}."""
    wheels = sorted(root.glob("*.dist-info/WHEEL"))
    if not wheels:
        raise LayerCheckError(f"no *.dist-info/WHEEL under {root}: the layer was not installed from wheels")
    fitting = {}
    for wheel in wheels:
        distribution = wheel.parent.name.removesuffix(".dist-info")
        lines = wheel.read_text().splitlines()
        tags = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
        fitting[distribution] = [tag for tag in tags if wheel_tag_fits(tag, runtime, arch)]
        if not fitting[distribution]:
            raise LayerCheckError(
                f"{distribution}: no wheel tag fits {runtime}/{arch.machine}/glibc<="
                f"{MAX_GLIBC[0]}.{MAX_GLIBC[1]}: {tags}"
            )
    return fitting


def check(root: Path, runtime: str, arch: Arch) -> dict:
    """Fail unless the layer under root (its python/ dir) fits runtime and arch; return what it found.

    Checks: every wheel's (*.dist-info/WHEEL) tags include one for the runtime's CPython, the architecture
    and a manylinux the runtime's glibc supports; every extension module (*.cpython-*.so, anywhere) is
    cpython-XY-<machine>-linux-gnu or abi3, PIL/_imaging among them; every shared object's ELF machine is
    the architecture's, every DT_NEEDED library is in the layer or in SYSTEM_LIBS, every symbol version it
    needs from SYSTEM_LIBS is of a family in RUNTIME_SYMBOL_VERSIONS and no newer than that family's
    newest there, and every one it needs from a bundled library is defined by that library.
    """
    major, minor = python_version(runtime)
    wheel_tags = check_wheels(root, runtime, arch)
    abi_suffix = f".cpython-{major}{minor}-{arch.machine}-linux-gnu.so"
    imaging = sorted((root / "PIL").glob("_imaging.*so"))
    if [p.name for p in imaging] != [f"_imaging{abi_suffix}"]:
        raise LayerCheckError(
            f"PIL/_imaging for {runtime}/{arch.lambda_name} must be _imaging{abi_suffix}, "
            f"found {[p.name for p in imaging]}"
        )
    shared = sorted(p for p in root.rglob("*.so*") if p.is_file())
    extension_modules = [p for p in shared if re.search(r"\.(cpython-[^.]*|abi3)\.so$", p.name)]
    for path in extension_modules:
        if not path.name.endswith((abi_suffix, ".abi3.so")):
            raise LayerCheckError(
                f"{path.relative_to(root)}: extension module for another Python, expected *{abi_suffix}"
            )
    infos = {path: elf_info(path) for path in shared}
    bundled_defs = {path.name: info.version_defs for path, info in infos.items()}
    highest: dict[str, tuple[tuple[int, ...], list[str]]] = {}
    for path, info in infos.items():
        name = path.relative_to(root).as_posix()
        if info.machine != arch.elf_machine:
            raise LayerCheckError(
                f"{name}: ELF machine {info.machine}, expected {arch.elf_machine} ({arch.machine})"
            )
        missing = [lib for lib in info.needed if lib not in bundled_defs and lib not in SYSTEM_LIBS]
        if missing:
            raise LayerCheckError(f"{name}: needs {missing}, not in the layer nor the runtime")
        for library, version in info.version_needs:
            if library in bundled_defs:
                if version not in bundled_defs[library]:
                    raise LayerCheckError(f"{name}: needs {version} of {library}, which does not define it")
                continue
            family, number = symbol_version(version) or (version, ())
            limit = RUNTIME_SYMBOL_VERSIONS.get(family)
            if library not in SYSTEM_LIBS or limit is None or not number:
                raise LayerCheckError(f"{name}: needs {version} of {library}, unknown on Amazon Linux 2023")
            if _padded(number) > _padded(limit):
                raise LayerCheckError(
                    f"{name}: needs {version} of {library}; {runtime}'s Amazon Linux 2023 has up to "
                    f"{_version_name(family, limit)}"
                )
            top, needed_by = highest.get(family, ((), []))
            if _padded(number) > _padded(top):
                highest[family] = (number, [name])
            elif _padded(number) == _padded(top) and name not in needed_by:
                needed_by.append(name)
    return {
        "imaging": imaging[0].name,
        "extension_modules": len(extension_modules),
        "shared_objects": len(shared),
        "wheel_tags": wheel_tags,
        "highest_symbol_versions": {
            family: {
                "version": _version_name(family, number),
                "runtime_has": _version_name(family, RUNTIME_SYMBOL_VERSIONS[family]),
                "needed_by": needed_by,
            }
            for family, (number, needed_by) in sorted(highest.items())
        },
    }


def write_zip(source: Path, destination: Path) -> None:
    """Zip source's content under python/ with sorted entries, fixed times and normalised modes."""
    files = [path for path in source.rglob("*") if path.is_file()]
    _write_zip({"python/" + path.relative_to(source).as_posix(): path for path in files}, destination)


def _write_zip(entries: dict[str, Path], destination: Path) -> None:
    """Zip `entries` (name in the zip -> file): sorted, fixed times, normalised modes; atomic."""
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):  # "isal/..." before "isal-1.9.1.dist-info/..."
            path = entries[name]
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(destination)


def unzipped_size(archive: Path) -> int:
    """Sum of the uncompressed sizes of a zip's entries (what Lambda's 250 MB limit counts)."""
    with zipfile.ZipFile(archive) as zf:
        return sum(info.file_size for info in zf.infolist())


def build(runtime: str, arch: Arch, out_dir: Path, force: bool = False) -> dict:
    """Build (or reuse) the layer for runtime/arch under out_dir/<arch>; return its build info."""
    arch_dir = out_dir / arch.lambda_name
    python_dir = arch_dir / "python"
    archive = arch_dir / ZIP_NAME
    info_path = arch_dir / INFO_NAME
    digest = inputs_digest(runtime, arch)
    if not force and archive.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("inputs_sha256") == digest:
            check(python_dir, runtime, arch)
            LOGGER.info("layer up to date", extra={"fields": {"zip": str(archive)}})
            return info
    started = time.monotonic()
    if arch_dir.exists():
        shutil.rmtree(arch_dir)
    python_dir.mkdir(parents=True)
    install(python_dir, runtime, arch)
    size_before = tree_size(python_dir)
    removed = slim(python_dir)
    compile_bytecode([python_dir], runtime, "/opt", py_compile.PycInvalidationMode.UNCHECKED_HASH)
    size_after = tree_size(python_dir)
    checked = check(python_dir, runtime, arch)
    write_zip(python_dir, archive)
    info = {
        "runtime": runtime,
        "architecture": arch.lambda_name,
        "inputs_sha256": digest,
        "unzipped_bytes_before_slimming": size_before,
        "unzipped_bytes_after_slimming": size_after,
        "zip_bytes": archive.stat().st_size,
        "zip_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "removed": removed,
        "check": checked,
        "build_seconds": round(time.monotonic() - started, 2),
    }
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    LOGGER.info("layer built", extra={"fields": {k: v for k, v in info.items() if k != "removed"}})
    return info


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.13", help="Lambda runtime, e.g. python3.13")
    parser.add_argument("--arch", default="x86_64", choices=sorted(ARCHES), help="Lambda architecture")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "build" / "layer")
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    parser.add_argument("--check-only", action="store_true", help="only check an existing build")
    parser.add_argument(
        "--function-code",
        metavar="ZIP",
        type=Path,
        help=f"also compile the function's code ({', '.join(FUNCTION_CODE)}) and zip it into ZIP, for sls",
    )
    args = parser.parse_args(argv)
    from thumbnailer.logs import json_handler

    logging.basicConfig(level=logging.INFO, handlers=[json_handler()])
    arch = ARCHES[args.arch]
    try:
        if args.check_only:
            result = check(args.out_dir / arch.lambda_name / "python", args.runtime, arch)
            LOGGER.info("layer check passed", extra={"fields": result})
        else:
            build(args.runtime, arch, args.out_dir, force=args.force)
        if args.function_code:
            compile_function_code(REPO_ROOT, args.runtime, REPO_ROOT / args.function_code)
    except (LayerCheckError, subprocess.CalledProcessError, OSError) as error:
        LOGGER.error("layer build failed: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(1, str(REPO_ROOT))  # thumbnailer.logs
    sys.exit(main())
