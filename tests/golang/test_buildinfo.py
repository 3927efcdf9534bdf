"""Go version and module list from .go.buildinfo, compared with `go version -m`."""

from __future__ import annotations

import struct
import subprocess

import pytest

from otel_goblock.golang import ElfImage, GoBinaryError, Module, parse_go_version, read_buildinfo
from otel_goblock.golang.buildinfo import MAGIC, parse_modinfo

from .conftest import Built


def go_version_m(go: str, path: str) -> tuple[str, list[tuple[str, str]], tuple[str, str] | None]:
    """(go version, [(dep path, version)], main module) as printed by `go version -m`."""
    out = subprocess.run([go, "version", "-m", path], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    version = lines[0].split(": ", 1)[1].strip()
    deps, main = [], None
    for line in lines[1:]:
        parts = line.strip().split("\t")
        if parts[0] == "dep":
            deps.append((parts[1], parts[2]))
        elif parts[0] == "mod":
            main = (parts[1], parts[2])
    return version, deps, main


def test_version_and_deps_match_go_version_m(go: str, any_binary: Built) -> None:
    info = read_buildinfo(ElfImage.open(str(any_binary.path)))
    version, deps, main = go_version_m(go, str(any_binary.path))
    assert info.go_version == version
    assert [(d.path, d.version) for d in info.deps] == deps
    assert info.main is not None and (info.main.path, info.main.version) == main
    assert info.path == f"example.com/goblockfixtures/cmd/{any_binary.program}"
    expected_minor = int(any_binary.toolchain.split(".")[1])
    assert info.version_tuple is not None and info.version_tuple[:2] == (1, expected_minor)


def test_otel_sdk_dependency_version(otel_dwarf: Built) -> None:
    info = read_buildinfo(ElfImage.open(str(otel_dwarf.path)))
    assert info.dep("go.opentelemetry.io/otel/sdk") == Module(
        "go.opentelemetry.io/otel/sdk", "v1.47.0", info.dep("go.opentelemetry.io/otel/sdk").sum
    )
    assert info.dep("go.opentelemetry.io/otel/sdk").sum.startswith("h1:")
    assert info.dep("google.golang.org/grpc") is None
    assert info.settings["GOARCH"] == "amd64" and info.settings["CGO_ENABLED"] == "0"


def test_basic_program_has_no_deps(basic_stripped: Built) -> None:
    info = read_buildinfo(ElfImage.open(str(basic_stripped.path)))
    assert info.deps == ()
    assert info.settings["-ldflags"] == "-s -w"


def test_parse_go_version_forms() -> None:
    assert parse_go_version("go1.26.8") == (1, 26, 8)
    assert parse_go_version("go1.27rc1") == (1, 27, 0)
    assert parse_go_version("go1.27.3 X:nodwarf5") == (1, 27, 3)
    assert parse_go_version("devel +abcdef") is None


def test_modinfo_replacements_apply_to_the_line_above() -> None:
    text = (
        "path\tex/cmd\nmod\tex\t(devel)\t\n"
        "dep\tgoogle.golang.org/grpc\tv1.60.0\th1:x\n"
        "=>\t../grpc\t(devel)\t\n"
        "dep\tgolang.org/x/net\tv0.20.0\th1:y\n"
        "build\t-ldflags=-s -w\n"
    )
    path, main, deps, settings = parse_modinfo(text)
    assert path == "ex/cmd" and main == Module("ex", "(devel)")
    assert deps[0].replace == Module("../grpc", "(devel)")
    assert deps[1].replace is None
    assert settings == {"-ldflags": "-s -w"}


def _rewrite_as_pre118(data: bytes, image: ElfImage) -> bytes:
    """Re-encode the section in the Go 1.13-1.17 layout (two pointers to string
    headers). No toolchain older than 1.26 may be fetched here, so this is the
    only way to exercise that reader on a real ELF."""
    sec = image.sections[".go.buildinfo"]
    raw = data[sec.offset : sec.offset + sec.size]

    def uvarint(pos: int) -> tuple[int, int]:
        v = shift = 0
        while True:
            b = raw[pos]
            v |= (b & 0x7F) << shift
            pos += 1
            if b < 0x80:
                return v, pos
            shift += 7

    n, p = uvarint(32)
    version = raw[p : p + n]
    n2, p2 = uvarint(p + n)
    modinfo = raw[p2 : p2 + n2]
    # Drop the build settings so both strings fit the old layout's 64-byte overhead.
    body = modinfo[16:-16].split(b"\nbuild\t")[0] + b"\n"
    modinfo = modinfo[:16] + body + modinfo[-16:]
    base = sec.addr
    hdr_v, hdr_m, data_v = base + 32, base + 48, base + 64
    data_m = data_v + len(version)
    blob = bytearray(raw[:14]) + bytes([8, 0])  # ptrsize 8, flags: little endian, pointers
    blob += struct.pack("<QQ", hdr_v, hdr_m)
    blob += struct.pack("<QQQQ", data_v, len(version), data_m, len(modinfo))
    blob += version + modinfo
    assert len(blob) <= sec.size
    blob += bytes(sec.size - len(blob))
    return data[: sec.offset] + bytes(blob) + data[sec.offset + sec.size :]


def test_pre_118_pointer_format(basic_dwarf: Built) -> None:
    data = basic_dwarf.path.read_bytes()
    new = read_buildinfo(ElfImage(data))
    old = read_buildinfo(ElfImage(_rewrite_as_pre118(data, ElfImage(data))))
    assert old.go_version == new.go_version
    assert old.main == new.main and old.path == new.path and old.deps == new.deps


def test_truncated_section_is_a_clear_error(basic_dwarf: Built) -> None:
    data = bytearray(basic_dwarf.path.read_bytes())
    image = ElfImage(bytes(data))
    sec = image.sections[".go.buildinfo"]
    assert data[sec.offset : sec.offset + len(MAGIC)] == MAGIC
    data[sec.offset + 32] = 0xFF  # version length varint now claims a huge string
    data[sec.offset + 33] = 0xFF
    data[sec.offset + 34] = 0x7F
    with pytest.raises(GoBinaryError, match="runs past the section"):
        read_buildinfo(ElfImage(bytes(data)))


def test_not_a_go_binary(tmp_path) -> None:
    with pytest.raises(GoBinaryError, match="not a readable ELF"):
        ElfImage(b"#!/bin/sh\necho hi\n")
    with pytest.raises(GoBinaryError, match="no Go build info"):
        read_buildinfo(ElfImage.open("/bin/true"))
    with pytest.raises(GoBinaryError, match="cannot read"):
        ElfImage.open(str(tmp_path / "missing"))
