"""Regenerate requirements.txt: pyproject.toml runtime dependencies pinned to the installed ones.

Usage: .venv/bin/python scripts/pin_requirements.py  (tests/tooling/test_requirements.py: sync)
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "# Pinned runtime dependencies of retail-forecast (generated from pyproject.toml by\n"
    "# scripts/pin_requirements.py; tests/tooling/test_requirements.py keeps them in sync).\n"
    "# Install torch with pip: torch==2.13.0 has a CPU wheel; a range pulls a CUDA build.\n"
)


def pinned_lines() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        installed = version(req.name).split("+")[0]  # torch reports 2.13.0+cpu
        lines.append(f"{req.name}=={installed}")
    return sorted(lines, key=str.lower)


def main() -> None:
    (ROOT / "requirements.txt").write_text(HEADER + "\n".join(pinned_lines()) + "\n")


if __name__ == "__main__":
    main()
