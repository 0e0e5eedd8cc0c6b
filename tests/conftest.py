"""Shared fixtures: the real-data location and small synthetic factories."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

# pytester: tests/tooling/test_data_marker.py runs this conftest on a tiny suite
pytest_plugins = ("pytester",)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_PATH = REPO_ROOT.parent / "shared" / "data" / "favorita-store-sales"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data-path",
        default=str(DEFAULT_DATA_PATH),
        help="Directory with the real Favorita files (default: ../shared/data/...).",
    )


def _data_path(config: pytest.Config) -> Path:
    return Path(str(config.getoption("--data-path")))


def _require_real_data(path: Path) -> None:
    """Skip when the real data is absent (a plain clone); fail instead when ``CI`` is set.

    CI has ``../shared`` beside the repository, so there a missing directory is a broken run.
    """
    if (path / "stores.csv").exists():
        return
    message = f"real Favorita data not found at {path} (--data-path DIR points elsewhere)"
    if os.environ.get("CI", "").strip().lower() not in {"", "0", "false"}:
        pytest.fail(f"{message}; CI is set, so the data tests must run", pytrace=False)
    pytest.skip(f"{message}: data test skipped")


def pytest_runtest_setup(item: pytest.Item) -> None:
    uses_data = "favorita_dir" in getattr(item, "fixturenames", ())
    if uses_data and item.get_closest_marker("data") is None:
        # the quick loop deselects by marker: an unmarked data test would run there
        pytest.fail(f"{item.nodeid} reads the real data: mark it @pytest.mark.data", pytrace=False)
    if item.get_closest_marker("data") is not None:
        _require_real_data(_data_path(item.config))


@pytest.fixture(scope="session")
def favorita_dir(request: pytest.FixtureRequest) -> Path:
    path = _data_path(request.config)
    _require_real_data(path)
    return path


# --- tiny Kaggle-layout directory (data-layer tests) -----------------------------------------

TINY_STORES = (1, 2)
TINY_FAMILIES = ("AUTOMOTIVE", "BREAD/BAKERY", "LIQUOR,WINE,BEER")  # one needs CSV quoting
TRAIN_HEADER = "id,date,store_nbr,family,sales,onpromotion"


def _field(value: object) -> str:
    text = str(value)
    return f'"{text}"' if "," in text else text


class TinyKaggle:
    """Editable CSV lines (no header) for each file; ``write()`` puts them on disk.

    train: 2016-12-20 .. 2017-01-05 without Dec 25 (16 dates) x 2 stores x 3 families = 96
    rows, so data line k is at file line k + 2. test: the 16 days after, 96 rows.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        days = [
            d for d in pd.date_range("2016-12-20", "2017-01-05") if (d.month, d.day) != (12, 25)
        ]
        keys = [(d, s, f) for d in days for s in TINY_STORES for f in TINY_FAMILIES]
        self.train: list[str | bytes] = [
            f"{i},{d:%Y-%m-%d},{s},{_field(f)},{(i * 7) % 13}.0,{i % 3}"
            for i, (d, s, f) in enumerate(keys)
        ]
        future = pd.date_range("2017-01-06", periods=16)
        self.test: list[str | bytes] | None = [
            f"{1000 + i},{d:%Y-%m-%d},{s},{_field(f)},{i % 2}"
            for i, (d, s, f) in enumerate(
                (d, s, f) for d in future for s in TINY_STORES for f in TINY_FAMILIES
            )
        ]
        self.stores: list[str | bytes] = [f"{s},Quito,Pichincha,D,{s}" for s in (1, 2, 3)]
        self.train_header = TRAIN_HEADER
        self.test_header = "id,date,store_nbr,family,onpromotion"

    def write(self, name: str = "kaggle") -> Path:
        out = self.root / name
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "train.csv": (self.train_header, self.train),
            "stores.csv": ("store_nbr,city,state,type,cluster", self.stores),
            "oil.csv": ("date,dcoilwtico", ["2016-12-20,", "2016-12-21,52.1"]),
            "holidays_events.csv": (
                "date,type,locale,locale_name,description,transferred",
                ["2016-12-25,Holiday,National,Ecuador,Navidad,False"],
            ),
            "transactions.csv": ("date,store_nbr,transactions", ["2016-12-20,1,900"]),
        }
        if self.test is not None:
            files["test.csv"] = (self.test_header, self.test)
        for filename, (header, lines) in files.items():
            body = [x if isinstance(x, bytes) else x.encode() for x in [header, *lines]]
            (out / filename).write_bytes(b"\n".join(body) + b"\n")
        return out


@pytest.fixture
def tiny_kaggle(tmp_path: Path) -> TinyKaggle:
    """A tiny, valid Kaggle-layout data set to edit and write (tests/conftest.py)."""
    return TinyKaggle(tmp_path)
