"""Run a notebook in a fresh kernel on this interpreter (shared by the notebook tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient


def pin_python3_kernel(jupyter_dir: Path) -> None:
    """Provide a "python3" kernel on this interpreter, found where the venv has none."""
    spec_dir = jupyter_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def run_notebook(
    path: Path, *, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timeout: int
) -> list[Any]:
    """Execute ``path`` with ``tmp_path`` as its working folder; return every code output.

    Fails the test if any cell raised.
    """
    jupyter_dir = tmp_path / "jupyter"
    pin_python3_kernel(jupyter_dir)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter_dir))
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    return outputs
