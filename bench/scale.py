"""Local vs dask engine at scale: feature building, XGBoost fit and 16-day forecast, peak memory.

Usage:
    .venv/bin/python bench/scale.py --data-dir ../shared/data/favorita-store-sales \
        --config favorita --rounds 100 --out bench/scale_favorita.json
    .venv/bin/retail-forecast data generate --out /tmp/items15m --stores 10 --items 800 \
        --days 1900   # ~15 M rows as train_parts/ (the m5-sized preset: 59 M rows)
    .venv/bin/python bench/scale.py --data-dir /tmp/items15m --rounds 50 --local-memory-gib 20 \
        --out bench/scale_15m.json
    .venv/bin/retail-forecast data generate --shape m5-sized --out /tmp/items59m
    .venv/bin/python bench/scale.py --data-dir /tmp/items59m --rounds 50 --engines dask \
        --out bench/scale_59m.json

Each engine runs in its own child process (so the driver's peak RSS is its own), under a wall
limit (``--limit-s``): a child killed by the limit or by the OOM killer is reported as such;
``--local-memory-gib`` caps the local engine's child so that running out of memory is a
MemoryError it reports rather than the OOM killer's choice on a shared machine.
Fixed for every size: ``--rounds`` boosting rounds on every row (no early stopping, no
backtest folds), the profile's other XGBoost and feature settings, and the forecast of
test.csv (the horizon after the last day). The dask engine reads a whole-series
``train_parts/`` dataset lazily (distributed/parquet_input.py); other data (Favorita's parts
cut by date) is read in the driver and shipped by series. Peak memory: the driver's max RSS
(``getrusage``, as ``/usr/bin/time -v`` reports) plus each Dask worker's own max RSS and the
scheduler's (a process of its own in the engine's local cluster).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

STAGES = ("read_s", "features_s", "train_s", "forecast_s")


def _max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _rss_gib() -> float:
    """This process's resident memory now (VmRSS), to see what a stage leaves behind."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _settings(args: argparse.Namespace) -> Any:
    from retail_forecast.commands.common import load_settings

    settings = load_settings(config=args.config, data_dir=args.data_dir)
    xgb = settings.xgboost.model_copy(update={"rounds": args.rounds})
    return settings.model_copy(update={"xgboost": xgb})


def _future(built_test: pd.DataFrame) -> pd.DataFrame:
    return built_test.drop(columns=["is_closed"], errors="ignore").astype({"family": str})


def run_local(args: argparse.Namespace) -> dict[str, Any]:
    """The local engine, stage by stage (XGBForecaster.fit split where it times itself)."""
    from retail_forecast.data_processing.dataset import build_dataset
    from retail_forecast.models.xgboost import XGBForecaster

    settings = _settings(args)
    out: dict[str, Any] = {}
    t = time.perf_counter()
    built = build_dataset(args.data_dir, settings.data, horizon=settings.forecast.horizon)
    out["read_s"] = time.perf_counter() - t
    model = XGBForecaster(
        settings.xgboost,
        settings.features,
        horizon=settings.forecast.horizon,
        holidays=built.holidays,
    )
    t = time.perf_counter()
    builder = model.feature_builder(built.sales)
    from retail_forecast.features.builder import panel_from_frame

    rows = model.training_rows(builder, panel_from_frame(built.sales))
    out["features_s"] = time.perf_counter() - t
    out["rows"] = len(rows.train_rows) + len(rows.valid_rows)  # training rows, as dask's
    t = time.perf_counter()
    booster = model._train(builder, rows.x, rows.y, rows.train_rows, rows.valid_rows)
    out["train_s"] = time.perf_counter() - t
    del rows
    model.set_fitted(builder, booster, origin=built.sales["date"].max(), seconds=0.0, rows=(0, 0))
    t = time.perf_counter()
    model.predict(built.sales, _future(built.test))
    out["forecast_s"] = time.perf_counter() - t
    out["peak_gib"] = _max_rss_gib()
    return out


def run_dask(args: argparse.Namespace) -> dict[str, Any]:
    """The dask engine (a local cluster, one worker process per core): lazy parts when it can."""
    from distributed import wait
    from retail_forecast.data_processing.dataset import build_dataset
    from retail_forecast.distributed import dask_xgboost as dx
    from retail_forecast.distributed import parquet_input as pi
    from retail_forecast.distributed.cluster import open_engine
    from retail_forecast.distributed.partitions import partition_count, partitioned_frame

    settings = _settings(args)
    horizon = settings.forecast.horizon
    out: dict[str, Any] = {}
    with open_engine("dask") as engine:
        assert engine is not None
        t = time.perf_counter()
        parts = pi.series_parts(args.data_dir)
        out["lazy"] = parts is not None
        if parts is not None:
            frame = pi.read_series_parts(parts, args.data_dir, settings.data, horizon=horizon)
            keys = pi.partition_keys(frame)
            pi.check_whole_series(keys)
            _, origin = pi.check_span(frame)
            test = pd.read_csv(Path(args.data_dir) / "test.csv", parse_dates=["date"])
            future, holidays, vocab = _future(test), None, keys
        else:
            built = build_dataset(args.data_dir, settings.data, horizon=horizon)
            n_series = built.sales.groupby(["store_nbr", "family"], observed=True).ngroups
            n = partition_count(n_series, len(built.sales), len(engine.workers()))
            frame = partitioned_frame(built.sales, n, engine.client)
            origin = built.sales["date"].max()
            future, holidays, vocab = _future(built.test), built.holidays, built.sales
        out["read_s"] = time.perf_counter() - t
        model = dx.DaskXGBForecaster(
            settings.xgboost, settings.features, horizon=horizon, holidays=holidays, engine=engine
        )
        t = time.perf_counter()
        builder = model.feature_builder(vocab)
        parts = dx.training_parts(engine, frame, model.local_model(), builder, model.config)
        wait([parts.x, parts.y])
        out["rows"] = sum(parts.counts)
        out["features_s"] = time.perf_counter() - t
        out["workers_after_features_gib"] = sum(engine.client.run(_rss_gib).values())
        t = time.perf_counter()
        booster = dx.dask_train(engine, model.params(), model.config, parts, builder)
        out["train_s"] = time.perf_counter() - t
        del parts
        booster.set_param({"nthread": model.config.nthread})
        model.set_fitted(builder, booster, origin=pd.Timestamp(origin), seconds=0.0, rows=(0, 0))
        t = time.perf_counter()
        model.predict_parts(frame.persist(), future)
        out["forecast_s"] = time.perf_counter() - t
        workers = engine.client.run(_max_rss_gib)
        out["driver_gib"], out["workers_gib"] = _max_rss_gib(), sum(workers.values())
        out["scheduler_gib"] = engine.client.run_on_scheduler(_max_rss_gib)
        out["peak_gib"] = out["driver_gib"] + out["workers_gib"] + out["scheduler_gib"]
    return out


def _child(args: argparse.Namespace, engine: str) -> dict[str, Any]:
    """Run one engine in a child process under the wall limit; report a kill as such."""
    cmd = [
        sys.executable,
        __file__,
        "--data-dir",
        args.data_dir,
        "--rounds",
        str(args.rounds),
        "--child",
        engine,
    ] + (["--config", args.config] if args.config else [])
    started = time.perf_counter()
    limit = args.local_memory_gib if engine == "local" else None
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=args.limit_s,
            check=False,
            preexec_fn=None if limit is None else _memory_cap(limit),
        )
    except subprocess.TimeoutExpired:
        return {"engine": engine, "status": f"over the {args.limit_s} s limit"}
    wall = time.perf_counter() - started
    if done.returncode != 0:
        why = "killed (out of memory?)" if done.returncode in (-9, 137) else done.stderr[-400:]
        if "MemoryError" in done.stderr or "bad_alloc" in done.stderr:
            last = done.stderr.strip().splitlines()[-1]
            why = f"out of memory under its {limit} GiB cap ({last})"
        return {"engine": engine, "status": f"failed: {why}", "wall_s": wall}
    return {
        "engine": engine,
        "status": "ok",
        "wall_s": wall,
        **json.loads(done.stdout.splitlines()[-1]),
    }


def _memory_cap(gib: float) -> Any:
    """A child's data-segment cap (RLIMIT_DATA: heap and anonymous mappings): an allocation
    past it raises MemoryError in the child instead of waking the machine's OOM killer."""

    def cap() -> None:
        size = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))

    return cap


def table(results: list[dict[str, Any]]) -> str:
    head = "| engine | rows | read s | features s | train s | forecast s | wall s | peak GiB |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"{r[k]:.1f}" if k in r else "-" for k in (*STAGES, "wall_s", "peak_gib")]
        rows = f"{r['rows']:,}" if "rows" in r else r["status"]
        lines.append(f"| {r['engine']} | {rows} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", default=None, help="profile, e.g. favorita")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--engines", default="local,dask")
    parser.add_argument("--limit-s", type=int, default=900)
    parser.add_argument(
        "--local-memory-gib",
        type=float,
        default=None,
        help="Cap the local engine's child (RLIMIT_DATA): past it, a MemoryError is reported",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (run_local if args.child == "local" else run_dask)(args)
        print(json.dumps(result))
        return
    results = [_child(args, engine) for engine in args.engines.split(",")]
    print(table(results))
    walls = {r["engine"]: r.get("wall_s") for r in results if r["status"] == "ok"}
    summary: dict[str, Any] = {"data_dir": args.data_dir, "rounds": args.rounds, "runs": results}
    if walls.get("local") and walls.get("dask"):
        summary["dask_over_local"] = walls["dask"] / walls["local"]
        print(f"dask / local wall: {summary['dask_over_local']:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
