"""The import-linter contracts in pyproject.toml hold, and they break on a wrong import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "src" / "retail_forecast"
LINT = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def _config() -> dict[str, Any]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    config: dict[str, Any] = pyproject["tool"]["importlinter"]
    return config


def _contracts() -> dict[str, str]:
    return {contract["id"]: contract["name"] for contract in _config()["contracts"]}


def _lint(cwd: Path, *contract_ids: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the pyproject.toml in ``cwd``; the package in ``cwd`` wins if any."""
    limit = [arg for cid in contract_ids for arg in ("--contract", cid)]
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", *limit],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "250"},  # one import per line, no wrapping
        timeout=120,
    )


def test_every_contract_is_kept() -> None:
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in result.stdout


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in _config()["contracts"] if c["id"] == contract_id)


def _top_level_modules() -> set[str]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    return modules | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def test_the_layers_contract_places_every_top_level_module() -> None:
    stages = _contract("stages")
    assert stages["exhaustive"] is True  # lint-imports fails on a module missing from the layers
    assert stages["containers"] == ["retail_forecast"]


def test_only_the_cli_imports_the_pipeline_names_every_other_module() -> None:
    sources = set(_contract("pipeline-only-from-cli")["source_modules"])
    expected = {f"retail_forecast.{m}" for m in _top_level_modules() - {"cli", "commands"}}
    assert sources == expected - {"retail_forecast.pipeline"}


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """The package and pyproject.toml copied to ``tmp_path`` (imported from there, not src/)."""
    shutil.copytree(PACKAGE, tmp_path / "retail_forecast", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


# (where the wrong import goes, what it imports, the contract that must catch it)
WRONG_IMPORTS = [
    ("models", "retail_forecast.api", "models-not-api"),
    ("features", "retail_forecast.models", "features-not-models"),
    ("data_processing", "retail_forecast.models", "data-not-models"),
    ("monitoring", "retail_forecast.training", "monitoring-not-training"),
    ("inference", "retail_forecast.pipeline", "inference-not-training"),
    ("storage", "retail_forecast.inference", "storage-is-low"),
    ("api", "retail_forecast.pipeline", "pipeline-only-from-cli"),
    ("features", "retail_forecast.inference", "stages"),
    ("errors", "retail_forecast.utils", "stages"),
]


@pytest.mark.parametrize(("where", "imported", "contract_id"), WRONG_IMPORTS)
def test_a_wrong_import_breaks_its_contract(
    package_copy: Path, where: str, imported: str, contract_id: str
) -> None:
    target = package_copy / "retail_forecast" / where
    if target.is_dir():
        (target / "wrong_way.py").write_text(f'"""Wrong on purpose."""\n\nimport {imported}\n')
        importer = f"retail_forecast.{where}.wrong_way"
    else:
        target = target.with_suffix(".py")
        target.write_text(target.read_text() + f"\nimport {imported}  # deliberately wrong\n")
        importer = f"retail_forecast.{where}"
    result = _lint(package_copy, contract_id)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{_contracts()[contract_id]} BROKEN" in output
    assert f"{importer} -> {imported}" in output  # the copy was linted, not src/
