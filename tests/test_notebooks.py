"""The EDA notebook runs end to end (on a small synthetic panel) and is stored without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
EDA = REPO_ROOT / "notebooks" / "01_eda.ipynb"


def _pin_python3_kernel(jupyter_dir: Path) -> None:
    """Provide a "python3" kernel on this interpreter, found where the venv has none."""
    spec_dir = jupyter_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


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
    jupyter_dir = tmp_path / "jupyter"
    _pin_python3_kernel(jupyter_dir)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter_dir))
    monkeypatch.setenv("RF_EDA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The venv's own "python3" spec (argv "python" = this interpreter) or the pinned one.
    assert KernelManager(kernel_name="python3").format_kernel_cmd()[0] == sys.executable
    notebook = nbformat.read(EDA, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(str(out.get("text", "")) for out in outputs)
    assert str(data_dir) in text
    assert "2016-04-16" in text  # the earthquake cell found the event and the dates
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 6
