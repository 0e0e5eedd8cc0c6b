"""notebooks/02_sagemaker.ipynb runs end to end against local S3 and local endpoints."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

DIFF_LINE = r"(\w+): (\d+) forecasts via the endpoint, max \|remote - local\| = (\S+)"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_sagemaker.ipynb"


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


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_sagemaker_notebook_runs_upload_train_endpoint_invoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jupyter_dir = tmp_path / "jupyter"
    _pin_python3_kernel(jupyter_dir)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter_dir))
    monkeypatch.setenv("RF_NB_WORKDIR", str(tmp_path / "work"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=90,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(str(out.get("text", "")) for out in outputs)
    assert "s3://rf-prototype/retail-forecast/data" in text  # the upload's answer
    assert '"TrainingJobName"' in text
    assert "ModelError 400" in text  # a malformed body comes back as ModelError
    diffs = re.findall(
        r"(\w+): (\d+) forecasts via the endpoint, max \|remote - local\| = (\S+)", text
    )
    assert {model for model, _, _ in diffs} == {"xgboost", "lstm"}
    assert all(int(n) == 16 * 12 and float(d) < 1e-6 for _, n, d in diffs)
    assert "stopped 2 endpoints" in text
