"""API fixtures: a real seasonal-naive predictor and an in-process client (lifespan runs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from api_helpers import HISTORY_END, series_rows, serve
from naive_backend import SeasonalNaivePredictor, make_history


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative default paths (the monitoring log data/monitoring.sqlite) land in tmp_path."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def predictor() -> SeasonalNaivePredictor:
    return SeasonalNaivePredictor(make_history(HISTORY_END))


@pytest.fixture
def client(predictor: SeasonalNaivePredictor) -> Iterator[TestClient]:
    with serve(predictor) as c:
        yield c


@pytest.fixture
def rows_factory() -> Callable[..., list[dict[str, Any]]]:
    return series_rows
