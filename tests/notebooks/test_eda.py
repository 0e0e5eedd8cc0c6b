"""The EDA notebook runs end to end (on a small synthetic panel) and is stored without outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from tests.notebooks.notebook_helpers import run_notebook

from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
EDA = REPO_ROOT / "notebooks" / "01_eda.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], path.name
            assert cell.execution_count is None, path.name


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_eda_notebook_runs_on_synthetic_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    # ~600 days so the panel covers the earthquake date (2016-04-16) and a late-opening store.
    write_dataset(data_dir, SyntheticConfig(n_stores=8, n_families=8, n_days=600, seed=0))
    monkeypatch.setenv("RF_EDA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    outputs = run_notebook(EDA, tmp_path=tmp_path, monkeypatch=monkeypatch, timeout=120)
    # the venv's own "python3" spec (argv "python" = this interpreter) or the pinned one
    assert KernelManager(kernel_name="python3").format_kernel_cmd()[0] == sys.executable
    text = "".join(str(out.get("text", "")) for out in outputs)
    assert str(data_dir) in text
    assert "2016-04-16" in text  # the earthquake cell found the event and the dates
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 6
