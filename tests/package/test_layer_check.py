"""The layer checker of layer/build.py on small crafted layers: what must pass and what must fail.

The layers are written here (WHEEL files and minimal ELF shared objects holding only what the checker
reads: the ELF header, .dynstr, .dynamic, .gnu.version_r, .gnu.version_d), so these tests need no build;
the last one patches a real shared object of the built layer.
"""

import re
import shutil
import struct
from pathlib import Path

import pytest

pytestmark = pytest.mark.package

RUNTIME = "python3.13"
EM_X86_64 = 62
EM_AARCH64 = 183
ABI = "cpython-313-x86_64-linux-gnu"
MANYLINUX_TAGS = ("cp313-cp313-manylinux_2_27_x86_64", "cp313-cp313-manylinux_2_28_x86_64")


class _StringTable:
    """An ELF string table: a NUL, then NUL-terminated names."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offsets: dict[str, int] = {}

    def add(self, name: str) -> int:
        if name not in self.offsets:
            self.offsets[name] = len(self.data)
            self.data += name.encode() + b"\0"
        return self.offsets[name]


def write_shared_object(
    path: Path,
    *,
    machine: int = EM_X86_64,
    needed: tuple[str, ...] = ("libc.so.6",),
    version_needs: tuple[tuple[str, str], ...] = (("libc.so.6", "GLIBC_2.2.5"),),
    version_defs: tuple[str, ...] = (),
) -> Path:
    """Write a minimal 64-bit little-endian ELF shared object with these dependencies and versions."""
    dynstr = _StringTable()
    dynamic = b"".join(struct.pack("<qQ", 1, dynstr.add(lib)) for lib in needed) + struct.pack("<qQ", 0, 0)

    by_library: dict[str, list[str]] = {}
    for library, version in version_needs:
        by_library.setdefault(library, []).append(version)
    verneed = bytearray()
    version_index = 2  # 0 and 1 are the local and global versions
    for number, (library, versions) in enumerate(by_library.items()):
        last_entry = number == len(by_library) - 1
        next_entry = 0 if last_entry else 16 + 16 * len(versions)
        verneed += struct.pack("<HHIII", 1, len(versions), dynstr.add(library), 16, next_entry)
        for position, version in enumerate(versions):
            next_aux = 0 if position == len(versions) - 1 else 16
            verneed += struct.pack("<IHHII", 0, 0, version_index, dynstr.add(version), next_aux)
            version_index += 1

    verdef = bytearray()
    definitions = [(1, path.name), *((0, version) for version in version_defs)] if version_defs else []
    for index, (flags, name) in enumerate(definitions):
        next_entry = 0 if index == len(definitions) - 1 else 28
        verdef += struct.pack("<HHHHIII", 1, flags, index + 1, 1, 0, 20, next_entry)
        verdef += struct.pack("<II", dynstr.add(name), 0)

    shstrtab = _StringTable()
    # (name, type, content, link to .dynstr, sh_info: entry count)
    contents = [
        (".dynstr", 3, bytes(dynstr.data), 0, 0),
        (".dynamic", 6, dynamic, 1, 0),
        (".gnu.version_r", 0x6FFFFFFE, bytes(verneed), 1, len(by_library)),
        (".gnu.version_d", 0x6FFFFFFD, bytes(verdef), 1, len(definitions)),
    ]
    names = [shstrtab.add(name) for name, *_ in contents]
    shstrtab_name = shstrtab.add(".shstrtab")
    contents.append((".shstrtab", 3, bytes(shstrtab.data), 0, 0))
    names.append(shstrtab_name)

    body = bytearray()
    headers = [struct.pack("<IIQQQQIIQQ", *([0] * 10))]
    for name, (_, sh_type, content, link, entries) in zip(names, contents, strict=True):
        offset = 64 + len(body)
        body += content + b"\0" * (-len(content) % 8)
        headers.append(
            struct.pack("<IIQQQQIIQQ", name, sh_type, 0, 0, offset, len(content), link, entries, 8, 0)
        )
    section_offset = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, section_offset, 0, 64, 0, 0, 64, len(headers), len(headers) - 1
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body + b"".join(headers))
    return path


def write_wheel(root: Path, distribution: str, *tags: str) -> None:
    """Write <distribution>.dist-info/WHEEL with these tags, as pip installs it."""
    wheel = root / f"{distribution}.dist-info" / "WHEEL"
    wheel.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Wheel-Version: 1.0", "Root-Is-Purelib: false", *(f"Tag: {tag}" for tag in tags)]
    wheel.write_text("\n".join(lines) + "\n")


@pytest.fixture
def fitting_layer(tmp_path) -> Path:
    """A python/ dir shaped like the real x86_64 layer (Pillow, pillow-heif): it fits python3.13 on Lambda."""
    root = tmp_path / "python"
    write_wheel(root, "pillow-13.0.0", *MANYLINUX_TAGS)
    write_wheel(root, "pillow_heif-1.8.1", *MANYLINUX_TAGS)
    write_shared_object(
        root / f"PIL/_imaging.{ABI}.so",
        needed=("libjpeg-1a2b3c4d.so.62.4.0", "libc.so.6"),
        version_needs=(
            ("libjpeg-1a2b3c4d.so.62.4.0", "LIBJPEG_6.2"),
            ("libc.so.6", "GLIBC_2.2.5"),
            ("libc.so.6", "GLIBC_2.27"),
        ),
    )
    write_shared_object(
        root / "pillow.libs/libjpeg-1a2b3c4d.so.62.4.0",
        version_needs=(("libc.so.6", "GLIBC_2.14"),),
        version_defs=("LIBJPEG_6.2", "LIBJPEGTURBO_6.2"),
    )
    write_shared_object(
        root / f"_pillow_heif.{ABI}.so",
        needed=("libheif-5e6f7a8b.so.1.23.0", "libc.so.6"),
        version_needs=(("libc.so.6", "GLIBC_2.14"),),
    )
    write_shared_object(
        root / "pillow_heif.libs/libheif-5e6f7a8b.so.1.23.0",
        needed=("libstdc++.so.6", "libgcc_s.so.1", "libm.so.6", "libc.so.6"),
        version_needs=(
            ("libstdc++.so.6", "GLIBCXX_3.4.22"),
            ("libstdc++.so.6", "CXXABI_1.3.11"),
            ("libgcc_s.so.1", "GCC_3.0"),
            ("libm.so.6", "GLIBC_2.2.5"),
            ("libc.so.6", "GLIBC_2.14"),
        ),
    )
    return root


def test_the_crafted_shared_object_reads_back(tmp_path, layer_builder):
    path = write_shared_object(
        tmp_path / "libx.so.1",
        machine=EM_AARCH64,
        needed=("libstdc++.so.6", "libc.so.6"),
        version_needs=(("libstdc++.so.6", "GLIBCXX_3.4.29"), ("libc.so.6", "GLIBC_2.17")),
        version_defs=("LIBX_1.0",),
    )

    info = layer_builder.elf_info(path)

    assert info.machine == EM_AARCH64
    assert info.needed == ("libstdc++.so.6", "libc.so.6")
    assert info.version_needs == (("libstdc++.so.6", "GLIBCXX_3.4.29"), ("libc.so.6", "GLIBC_2.17"))
    assert info.version_defs == {"LIBX_1.0"}


def test_a_layer_that_fits_passes_and_reports_its_highest_symbol_versions(fitting_layer, layer_builder):
    result = layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])

    assert result["imaging"] == f"_imaging.{ABI}.so"
    assert result["extension_modules"] == 2
    assert result["shared_objects"] == 4
    assert sorted(result["wheel_tags"]) == ["pillow-13.0.0", "pillow_heif-1.8.1"]
    assert {family: found["version"] for family, found in result["highest_symbol_versions"].items()} == {
        "CXXABI": "CXXABI_1.3.11",
        "GCC": "GCC_3.0",
        "GLIBC": "GLIBC_2.27",
        "GLIBCXX": "GLIBCXX_3.4.22",
    }
    assert result["highest_symbol_versions"]["GLIBC"]["needed_by"] == [f"PIL/_imaging.{ABI}.so"]
    assert result["highest_symbol_versions"]["GLIBC"]["runtime_has"] == "GLIBC_2.34"


@pytest.mark.parametrize(
    ("library", "version"),
    [
        ("libc.so.6", "GLIBC_2.34"),
        ("libstdc++.so.6", "GLIBCXX_3.4.29"),
        ("libstdc++.so.6", "CXXABI_1.3.13"),
        ("libgcc_s.so.1", "GCC_7.0.0"),
    ],
)
def test_the_newest_symbol_versions_of_amazon_linux_2023_pass(fitting_layer, layer_builder, library, version):
    write_shared_object(
        fitting_layer / "pillow_heif.libs/libde265-0a1b2c3d.so.0.2.0",
        needed=(library,),
        version_needs=((library, version),),
    )

    layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


@pytest.mark.parametrize(
    "tag",
    [
        "cp313-cp313-manylinux_2_35_x86_64",  # newer glibc than Amazon Linux 2023's
        "cp313-cp313-manylinux_2_28_aarch64",  # the other architecture
        "cp312-cp312-manylinux_2_28_x86_64",  # another Python
        "cp313-cp313t-manylinux_2_28_x86_64",  # free-threaded build
        "cp314-abi3-manylinux_2_28_x86_64",  # stable ABI of a newer Python
        "cp313-cp313-linux_x86_64",  # not manylinux: built against some host's libraries
        "cp313-cp313-musllinux_1_2_x86_64",
        "py2-none-any",
    ],
)
def test_a_second_wheel_without_a_fitting_tag_fails(fitting_layer, layer_builder, tag):
    write_wheel(fitting_layer, "isal-1.9.1", tag)

    with pytest.raises(layer_builder.LayerCheckError, match=r"isal-1\.9\.1: no wheel tag fits"):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


@pytest.mark.parametrize(
    "tag",
    [
        "cp313-cp313-manylinux_2_34_x86_64",
        "cp313-cp313-manylinux2014_x86_64",
        "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64",  # a compressed tag set
        "cp39-abi3-manylinux_2_17_x86_64",
        "py3-none-any",
    ],
)
def test_a_second_wheel_with_one_fitting_tag_passes(fitting_layer, layer_builder, tag):
    write_wheel(fitting_layer, "isal-1.9.1", "cp313-cp313-manylinux_2_35_x86_64", tag)

    result = layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])

    assert result["wheel_tags"]["isal-1.9.1"] == [tag]


def test_a_layer_without_wheel_metadata_fails(fitting_layer, layer_builder):
    for wheel in fitting_layer.glob("*.dist-info"):
        shutil.rmtree(wheel)

    with pytest.raises(layer_builder.LayerCheckError, match="not installed from wheels"):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


@pytest.mark.parametrize(
    "module",
    [
        "_pillow_heif.cpython-312-x86_64-linux-gnu.so",
        "pillow_heif/_speedups.cpython-313-aarch64-linux-gnu.so",
        "isal/isal_zlib.cpython-313t-x86_64-linux-gnu.so",
        "PIL/_webp.cpython-313-darwin.so",
    ],
)
def test_an_extension_module_for_another_python_fails_wherever_it_is(fitting_layer, layer_builder, module):
    write_shared_object(fitting_layer / module)

    with pytest.raises(layer_builder.LayerCheckError, match="extension module for another Python"):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


def test_a_stable_abi_extension_module_passes(fitting_layer, layer_builder):
    write_shared_object(fitting_layer / "isal/_isal.abi3.so")

    result = layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])

    assert result["extension_modules"] == 3


def test_a_shared_object_for_another_machine_fails(fitting_layer, layer_builder):
    write_shared_object(fitting_layer / "pillow_heif.libs/libheif-5e6f7a8b.so.1.23.0", machine=EM_AARCH64)

    with pytest.raises(layer_builder.LayerCheckError, match="ELF machine 183, expected 62"):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


def test_a_dependency_neither_in_the_layer_nor_the_runtime_fails(fitting_layer, layer_builder):
    (fitting_layer / "pillow.libs/libjpeg-1a2b3c4d.so.62.4.0").unlink()

    with pytest.raises(layer_builder.LayerCheckError, match="not in the layer nor the runtime"):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


@pytest.mark.parametrize(
    ("library", "version"),
    [
        ("libc.so.6", "GLIBC_2.35"),
        ("libm.so.6", "GLIBC_2.38"),
        ("libc.so.6", "GLIBC_ABI_DT_RELR"),  # glibc 2.36's marker for packed relocations
        ("libc.so.6", "GLIBC_PRIVATE"),
        ("libstdc++.so.6", "GLIBCXX_3.4.30"),  # GCC 12's libstdc++
        ("libstdc++.so.6", "CXXABI_1.3.14"),
        ("libgcc_s.so.1", "GCC_12.0.0"),
    ],
)
def test_a_shared_object_needing_a_newer_system_symbol_version_fails(
    fitting_layer, layer_builder, library, version
):
    write_shared_object(
        fitting_layer / "pillow_heif.libs/libde265-0a1b2c3d.so.0.2.0",
        needed=(library,),
        version_needs=((library, version),),
    )

    expected = re.escape(f"libde265-0a1b2c3d.so.0.2.0: needs {version} of {library}")
    with pytest.raises(layer_builder.LayerCheckError, match=expected):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


def test_a_symbol_version_a_bundled_library_does_not_define_fails(fitting_layer, layer_builder):
    write_shared_object(
        fitting_layer / "pillow.libs/libtiff-9f8e7d6c.so.6.3.0",
        needed=("libjpeg-1a2b3c4d.so.62.4.0",),
        version_needs=(("libjpeg-1a2b3c4d.so.62.4.0", "LIBJPEG_8.0"),),
    )

    expected = re.escape("needs LIBJPEG_8.0 of libjpeg-1a2b3c4d.so.62.4.0, which does not define it")
    with pytest.raises(layer_builder.LayerCheckError, match=expected):
        layer_builder.check(fitting_layer, RUNTIME, layer_builder.ARCHES["x86_64"])


def test_the_built_layer_fails_once_a_shared_object_needs_glibc_2_35(
    unzipped_layer, function, layer_builder, tmp_path
):
    """A real shared object whose GLIBC_2.x requirement is rewritten, in place, to GLIBC_2.35.

    Every copy of the name is rewritten: patchelf (auditwheel) leaves the old .dynstr behind its new one.
    """
    (arch,) = function["Architectures"]
    layer = shutil.copytree(unzipped_layer, tmp_path / "python", symlinks=True)
    imaging = next((layer / "PIL").glob("_imaging.*.so"))
    data = imaging.read_bytes()
    required = re.search(rb"GLIBC_2\.\d\d\0", data)  # same length as GLIBC_2.35: no offset moves
    assert required, "no two-digit GLIBC_2.x requirement to rewrite"
    imaging.write_bytes(data.replace(required.group(), b"GLIBC_2.35\0"))

    expected = re.escape(f"{imaging.name}: needs GLIBC_2.35 of ")
    with pytest.raises(layer_builder.LayerCheckError, match=expected):
        layer_builder.check(layer, function["Runtime"], layer_builder.ARCHES[arch])
