"""notebooks/02_sagemaker.ipynb runs end to end against local S3 and local endpoints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.notebooks.notebook_helpers import run_notebook

DIFF_LINE = r"(\w+): (\d+) forecasts via the endpoint, max \|remote - local\| = (\S+)"
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_sagemaker.ipynb"


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_sagemaker_notebook_runs_upload_train_endpoint_invoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RF_NB_WORKDIR", str(tmp_path / "work"))
    outputs = run_notebook(NOTEBOOK, tmp_path=tmp_path, monkeypatch=monkeypatch, timeout=90)
    text = "".join(str(out.get("text", "")) for out in outputs)
    assert "s3://rf-prototype/retail-forecast/data" in text  # the upload's answer
    assert '"TrainingJobName"' in text
    assert "ModelError 400" in text  # a malformed body comes back as ModelError
    diffs = re.findall(DIFF_LINE, text)
    assert {model for model, _, _ in diffs} == {"xgboost", "lstm"}
    assert all(int(n) == 16 * 12 and float(d) < 1e-6 for _, n, d in diffs)
    assert "stopped 2 endpoints" in text
