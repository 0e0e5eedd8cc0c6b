"""Shared fixtures: the real-data location and small synthetic factories."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_PATH = REPO_ROOT.parent / "shared" / "data" / "favorita-store-sales"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data-path",
        default=str(DEFAULT_DATA_PATH),
        help="Directory with the real Favorita files (default: ../shared/data/...).",
    )


@pytest.fixture(scope="session")
def favorita_dir(request: pytest.FixtureRequest) -> Path:
    path = Path(str(request.config.getoption("--data-path")))
    if not (path / "stores.csv").exists():
        pytest.fail(f"real Favorita data not found at {path} (use --data-path)")
    return path
