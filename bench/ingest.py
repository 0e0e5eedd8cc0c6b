"""Full real-data import (read + validate + clean + fingerprint + atomic write) vs a bare read.

Usage: /usr/bin/time -v .venv/bin/python bench/ingest.py [--data-path DIR] [--csv]

The reference, measured in the same process, is the plain way to load the train parts:
``pd.concat([pd.read_parquet(part) for part in parts])``. With ``--csv`` the 31 parts are first
written as one ``train.csv`` in a temporary directory (not timed) and the import reads that;
the reference is then ``pd.read_csv(train.csv)``. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from retail_forecast.config import DataConfig
from retail_forecast.pipeline.data_import import import_dataset

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "favorita-store-sales"


def csv_copy(source: Path, target: Path) -> Path:
    """The same data set with train as one CSV (other files copied)."""
    target.mkdir()
    for name in ("stores.csv", "test.csv", "oil.csv", "holidays_events.csv", "transactions.csv"):
        shutil.copy(source / name, target / name)
    train = pd.concat([pd.read_parquet(p) for p in (source / "train_parts").glob("*.parquet")])
    train.sort_values("id").to_csv(target / "train.csv", index=False)
    return target


DIRTY = {  # line number in train.csv -> replacement bytes (one per rule class)
    1_000: b"999,2013-01-01,1,AUTOMOTIVE,-5.0,0",  # negative_sales
    2_000: b"1999,2013-13-01,1,AUTOMOTIVE,1.0,0",  # bad_date
    3_000: b"2999,2013-01-02,1,AUTOMOTIVE,1.0",  # malformed_row
    4_000: b"3999,2013-01-03,1,AUTOMOTIV\xff,1.0,0",  # encoding
    5_000: b"4999,2013-01-03,99,AUTOMOTIVE,1.0,0",  # unknown_store
}


def make_dirty(data_dir: Path) -> int:
    """Replace a few train.csv lines with bad ones and append one duplicate; bad-row count."""
    path = data_dir / "train.csv"
    lines = path.read_bytes().split(b"\n")
    for number, text in DIRTY.items():
        lines[number - 1] = text
    lines.insert(-1, lines[10])  # a copy of line 11 (the file ends with a newline)
    path.write_bytes(b"\n".join(lines))
    return len(DIRTY) + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path", type=Path, default=DEFAULT)
    parser.add_argument("--csv", action="store_true", help="read train.csv instead of parts")
    parser.add_argument("--dirty", action="store_true", help="with --csv: inject bad rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_dir = args.data_path
        if args.csv:  # in a child process, so its memory is not in this process's peak
            with ProcessPoolExecutor(max_workers=1) as pool:
                data_dir = pool.submit(csv_copy, args.data_path, tmp / "csv").result()
        config = DataConfig(
            processed_dir=tmp / "processed",
            quarantine_dir=tmp / "quarantine",
            fail_on_key_rules=not args.dirty,
        )
        injected = make_dirty(data_dir) if args.dirty else 0

        start = time.perf_counter()
        built = import_dataset(data_dir, config)
        wall = time.perf_counter() - start
        import_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        again = import_dataset(data_dir, config)
        wall_again = time.perf_counter() - start
        report = built.report
        del built

        start = time.perf_counter()
        if args.csv:
            reference = pd.read_csv(
                data_dir / "train.csv", on_bad_lines="skip", encoding_errors="replace"
            )
        else:
            parts = sorted((data_dir / "train_parts").glob("*.parquet"))
            reference = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        wall_ref = time.perf_counter() - start
        assert len(reference) == report.rows_read  # pandas NaN-fills the short row, silently
        assert report.rows_quarantined == injected, report.issues

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"input: {'train.csv' if args.csv else 'train_parts/*.parquet'} ({report.rows_read:,} rows)"
    )
    print(
        f"kept {report.rows_kept:,}, quarantined {report.rows_quarantined:,}, "
        f"panel {report.panel_rows:,} rows ({report.filled_open_rows} open days filled), "
        f"fingerprint {report.fingerprint}"
    )
    print(f"issues: {report.issues}")
    print(f"import (read+validate+clean+write): {wall:.2f} s")
    print(f"re-import, unchanged (written={again.written}): {wall_again:.2f} s")
    print(
        f"reference bare read: {wall_ref:.2f} s  -> ratio import/reference {wall / wall_ref:.1f}x"
    )
    print(f"peak RSS right after the first import (ru_maxrss): {import_peak_mib:.0f} MiB")
    print(f"peak RSS at the end (incl. reference): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
