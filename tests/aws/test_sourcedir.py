"""sourcedir.tar.gz: deterministic, the package + requirements.txt + importable shims."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from retail_forecast.aws.sourcedir import SHIMS, pack_source_dir
from retail_forecast.errors import ConfigError


def _package(root: Path) -> Path:
    pkg = root / "retail_forecast"
    (pkg / "training" / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""pkg."""\n')
    (pkg / "py.typed").write_text("")
    (pkg / "training" / "train_xgboost.py").write_text("X = 1\n")
    (pkg / "training" / "__pycache__" / "train_xgboost.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "notes.txt").write_text("not shipped")
    (root / "requirements.txt").write_text("xgboost-cpu==3.2.0\n")
    return pkg


def test_layout_and_determinism(tmp_path: Path) -> None:
    pkg = _package(tmp_path / "src")
    req = tmp_path / "src" / "requirements.txt"
    first = pack_source_dir(tmp_path / "a.tar.gz", package=pkg, requirements=req)
    second = pack_source_dir(tmp_path / "b.tar.gz", package=pkg, requirements=req)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        names = tar.getnames()
    assert names == sorted(
        [
            "handler.py",
            "requirements.txt",
            "retail_forecast/__init__.py",
            "retail_forecast/py.typed",
            "retail_forecast/training/train_xgboost.py",
            "train_lstm.py",
            "train_xgboost.py",
        ]
    )


@pytest.mark.parametrize("name", sorted(SHIMS))
def test_shims_are_valid_python(name: str) -> None:
    compile(SHIMS[name], name, "exec")


def test_default_packs_this_checkout(tmp_path: Path) -> None:
    with tarfile.open(pack_source_dir(tmp_path / "s.tar.gz")) as tar:
        names = set(tar.getnames())
    assert "retail_forecast/aws/sourcedir.py" in names
    assert "requirements.txt" in names


def test_missing_requirements_refused(tmp_path: Path) -> None:
    pkg = _package(tmp_path / "src")
    with pytest.raises(ConfigError, match=r"requirements\.txt"):
        pack_source_dir(tmp_path / "a.tar.gz", package=pkg, requirements=tmp_path / "none.txt")
