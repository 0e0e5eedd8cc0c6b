"""Deterministic tar.gz packing and extraction that refuses unsafe members."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from retail_forecast.aws.archive import safe_extract, write_tar_gz
from retail_forecast.aws.datasets import raw_dataset_files
from retail_forecast.errors import ArtifactError


def _files(root: Path) -> dict[str, Path]:
    (root / "sub").mkdir(parents=True)
    (root / "b.json").write_text('{"b": 1}')
    (root / "sub" / "a.json").write_text('{"a": 2}')
    return {"b.json": root / "b.json", "sub/a.json": root / "sub" / "a.json"}


def test_same_files_same_bytes(tmp_path: Path) -> None:
    files = _files(tmp_path / "src")
    first = write_tar_gz(files, tmp_path / "one.tar.gz").read_bytes()
    (tmp_path / "src" / "b.json").touch()  # a new mtime must not change the archive
    second = write_tar_gz(dict(reversed(files.items())), tmp_path / "two.tar.gz").read_bytes()
    assert first == second
    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        assert tar.getnames() == ["b.json", "sub/a.json"]


def test_round_trip(tmp_path: Path) -> None:
    write_tar_gz(_files(tmp_path / "src"), tmp_path / "a.tar.gz")
    names = safe_extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert names == ["b.json", "sub/a.json"]
    assert (tmp_path / "out" / "sub" / "a.json").read_text() == '{"a": 2}'


def _evil(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escape.json"),
        tarfile.TarInfo("/etc/escape.json"),
        tarfile.TarInfo("a/../../escape.json"),
        tarfile.TarInfo("./escape.json"),
        tarfile.TarInfo("..\\escape.json"),
        tarfile.TarInfo(".hidden.json"),
        _link("link.json", "/etc/passwd", tarfile.SYMTYPE),
        _link("hard.json", "../outside.json", tarfile.LNKTYPE),
    ],
    ids=[
        "dotdot",
        "absolute",
        "nested-dotdot",
        "dot",
        "backslash",
        "hidden",
        "symlink",
        "hardlink",
    ],
)
def test_unsafe_member_refused_before_extraction(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = _evil(tmp_path / "evil.tar.gz", member)
    with pytest.raises(ArtifactError, match=r"unsafe|link"):
        safe_extract(archive, tmp_path / "out" / "inner")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.json").exists()


def test_truncated_archive_refused(tmp_path: Path) -> None:
    archive = write_tar_gz(_files(tmp_path / "src"), tmp_path / "a.tar.gz")
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(ArtifactError, match="unreadable archive"):
        safe_extract(archive, tmp_path / "out")


def test_size_limit(tmp_path: Path) -> None:
    archive = write_tar_gz(_files(tmp_path / "src"), tmp_path / "a.tar.gz")
    with pytest.raises(ArtifactError, match="expands beyond"):
        safe_extract(archive, tmp_path / "out", max_bytes=10)


# The member-name rule is the bundle's (manifest.check_member_name), for every archive name.
ODD_NAMES = ["", "/abs.json", "./b.json", "sub//a.json", "a\\b.json", ".tmp.json", "a b.json"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_packing_refuses_a_name_a_bundle_would_refuse(tmp_path: Path, name: str) -> None:
    files = _files(tmp_path / "src")
    with pytest.raises(ArtifactError, match="unsafe file name"):
        write_tar_gz({**files, name: files["b.json"]}, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()


def test_a_data_set_part_with_an_odd_name_is_refused_before_upload(tmp_path: Path) -> None:
    (tmp_path / "train_parts").mkdir()
    (tmp_path / "train_parts" / "2017 q1.parquet").write_bytes(b"PAR1")
    with pytest.raises(ArtifactError, match="unsafe file name"):
        raw_dataset_files(tmp_path)
