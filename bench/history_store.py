"""Bench: HistoryStore and bundle verification on the real Favorita data.

    .venv/bin/python bench/history_store.py [--data-path ../shared/data/favorita-store-sales]

HistoryStore: build from the full real canonical frame (last 120 days kept), reopen, append 30
real days one day (1,782 rows) at a time, re-append them (idempotent), to_frame.
Bundle: publish + verify_bundle of a bundle holding a real-size random payload.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retail_forecast.artifacts import BundleWriter, verify_bundle
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, SORT_KEYS
from retail_forecast.storage import HistoryStore

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "favorita-store-sales"


def load_canonical(data_path: Path) -> pd.DataFrame:
    parts = [
        pd.read_parquet(data_path / "train_parts" / f"df_train_part_{i}.parquet") for i in range(31)
    ]
    train = pd.concat(parts, ignore_index=True).drop(columns="id")
    train[DATE] = pd.to_datetime(train[DATE])
    train[FAMILY] = pd.Categorical(train[FAMILY], categories=sorted(train[FAMILY].unique()))
    train["is_closed"] = False  # no 25 Dec in the last 120 days, nothing to fill there
    return train.sort_values(list(SORT_KEYS), ignore_index=True)[list(CANONICAL_COLUMNS)]


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def bench_history(sales: pd.DataFrame, work: Path) -> None:
    end = sales[DATE].max()
    cut = end - pd.Timedelta(days=30)
    db = work / "history.sqlite"
    head = sales[sales[DATE] <= cut]
    store, t = timed(lambda: HistoryStore.from_frame(head, n_days=120, db_path=db))
    print(f"from_frame (input {len(head):,} rows, keeps 120 d x 1782): {t[0]:.2f} s")
    print(f"sqlite size after build: {db.stat().st_size / 2**20:.1f} MiB")
    days = [sales[sales[DATE] == d].drop(columns="is_closed") for d in pd.date_range(cut, end)[1:]]
    append_times = []
    for day in days:
        _, t = timed(lambda day=day: store.append_actuals(day))
        append_times.append(t[0])
    median_ms = statistics.median(append_times) * 1e3
    print(
        f"append_actuals, 1 day = 1,782 rows, 30 days: median {median_ms:.1f} ms,"
        f" max {max(append_times) * 1e3:.1f} ms"
    )
    _, t = timed(lambda: store.append_actuals(pd.concat(days)))
    print(f"re-append of the same 53,460 rows (idempotent no-op): {t[0] * 1e3:.0f} ms")
    snap = store.snapshot()
    nbytes = snap.sales.nbytes + snap.onpromotion.nbytes + snap.is_closed.nbytes
    print(f"in-memory arrays: {nbytes / 2**20:.2f} MiB; history_end {snap.history_end.date()}")
    _, t = timed(store.to_frame, repeat=5)
    print(f"to_frame (213,840 rows): median {statistics.median(t) * 1e3:.1f} ms")
    store.close()
    reopened, t = timed(lambda: HistoryStore.open(db), repeat=3)
    print(f"open (restart): median {statistics.median(t) * 1e3:.0f} ms")
    expected = sales[sales[DATE] > end - pd.Timedelta(days=120)].reset_index(drop=True)
    pd.testing.assert_frame_equal(reopened.to_frame(), expected)
    print("check: reopened window == real last 120 days: ok")


def bench_bundle(work: Path) -> None:
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 255, size=64 * 2**20, dtype=np.uint8).tobytes()
    header = b'{"__metadata__":{}}'
    fingerprint = hashlib.sha256(b"bench").hexdigest()

    def publish() -> Path:
        with BundleWriter(work / "artifacts", fingerprint=fingerprint) as writer:
            (writer.directory / "xgboost").mkdir()
            (writer.directory / "xgboost" / "model.ubj").write_bytes(b"{" + payload)
            (writer.directory / "lstm").mkdir()
            weights = len(header).to_bytes(8, "little") + header
            (writer.directory / "lstm" / "weights.safetensors").write_bytes(weights)
        assert writer.path is not None
        return writer.path

    path, t = timed(publish)
    print(f"publish bundle with a 64 MiB model file (hash + fsync + rename): {t[0] * 1e3:.0f} ms")
    _, t = timed(lambda: verify_bundle(path), repeat=5)
    print(f"verify_bundle 64 MiB: median {statistics.median(t) * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path", type=Path, default=DEFAULT)
    args = parser.parse_args()
    sales, t = timed(lambda: load_canonical(args.data_path))
    print(f"loaded real canonical frame: {len(sales):,} rows in {t[0]:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        bench_history(sales, Path(tmp))
        bench_bundle(Path(tmp))


if __name__ == "__main__":
    main()
