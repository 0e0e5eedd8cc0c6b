"""LocalPredictor with a real bundle: in-process and HTTP latency, service RSS (bounded).

Not a test. Loads ``<artifacts>/current`` (verified), takes the request rows from the real
test.csv (real onpromotion values, 2017-08-16 .. 08-31), and measures:

- in-process ``LocalPredictor.predict``: one series x 16 days (random series), all 1,782
  series x 16 days (28,512 rows), and ``predict_from`` (the ``forecast`` command's path);
- ``retail-forecast serve`` in a subprocess on 127.0.0.1: time to /ready, single-series
  requests sequentially and from ``--clients`` threads for ``--seconds``, all-series requests,
  the service RSS after warm-up and at the end, and the exit code after SIGTERM.

    .venv/bin/python bench/serve_local.py --artifacts artifacts \
        --data-dir ../shared/data/favorita-store-sales
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd

from retail_forecast.config import ApiConfig, Settings
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.preprocess import (
    canonical_rows,
    history_from_snapshot,
    requested_series,
)

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)} {values[0] * 1e3:.1f} ms" if values else "n=0"
    q = statistics.quantiles(values, n=100)
    return (
        f"n={len(values)} p50 {q[49] * 1e3:.1f} ms, p95 {q[94] * 1e3:.1f} ms, "
        f"p99 {q[98] * 1e3:.1f} ms, max {max(values) * 1e3:.1f} ms"
    )


def series_frames(test: pd.DataFrame) -> list[pd.DataFrame]:
    rows = test.drop(columns="id")
    return [
        g.reset_index(drop=True) for _, g in rows.groupby(["store_nbr", "family"], observed=True)
    ]


def body(frame: pd.DataFrame) -> bytes:
    rows = [
        {
            "date": pd.Timestamp(r["date"]).date().isoformat(),
            "store_nbr": int(r["store_nbr"]),
            "family": str(r["family"]),
            "onpromotion": int(r["onpromotion"]),
        }
        for r in frame.to_dict("records")
    ]
    return json.dumps({"rows": rows}).encode()


def in_process(args: argparse.Namespace, test: pd.DataFrame, sales: pd.DataFrame) -> None:
    history = Path(tempfile.mkdtemp(prefix="rf-bench-history-"))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, artifacts_dir=args.artifacts, api=ApiConfig(history_dir=history)
    )
    started = time.perf_counter()
    predictor = LocalPredictor.load(settings)
    seconds = time.perf_counter() - started
    print(f"LocalPredictor.load (verify + models + history store): {seconds:.2f} s")
    series = series_frames(test)
    everything = test.drop(columns="id")
    predictor.predict(series[0])  # warm-up
    rng = random.Random(0)  # noqa: S311 - sampling, not security
    times = []
    for _ in range(args.reps):
        frame = rng.choice(series)
        t0 = time.perf_counter()
        predictor.predict(frame)
        times.append(time.perf_counter() - t0)
    print(f"in-process predict, 1 series x 16 days: {pct(times)}")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = predictor.predict(everything)
        times.append(time.perf_counter() - t0)
    print(f"in-process predict, {len(everything):,} rows (all series x 16): {pct(times)}")
    print(f"  models used: {out['model'].value_counts().to_dict()}")
    components(predictor, series[0], everything)
    t0 = time.perf_counter()
    predictor.predict_from(sales, test)
    seconds = time.perf_counter() - t0
    print(f"in-process predict_from (forecast command path, full history): {seconds:.2f} s")
    predictor.close()


def components(predictor: LocalPredictor, one: pd.DataFrame, everything: pd.DataFrame) -> None:
    """Each model alone on the history slice the predictor builds (LSTM too, whatever blend)."""
    snapshot = predictor.store.snapshot() if predictor.store is not None else None
    assert snapshot is not None
    for label, rows in (("1 series", one), (f"{len(everything):,} rows", everything)):
        request = canonical_rows(rows, predictor.domain.families)
        history = history_from_snapshot(snapshot, requested_series(request))
        for name, model in (("xgboost", predictor.model.xgboost), ("lstm", predictor.model.lstm)):
            model.predict(history, request)
            reps = 20 if len(rows) < 100 else 3
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                model.predict(history, request)
                times.append(time.perf_counter() - t0)
            print(f"  {name}.predict alone, {label}: {pct(times)}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_run(
    url: str, bodies: list[bytes], *, clients: int, seconds: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - sampling, not security
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = http.post(
                    "/api/v1/predict",
                    content=rng.choice(bodies),
                    headers={"Content-Type": "application/json"},
                )
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    errors[0] += r.status_code != 200

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.monotonic() - started


def http_run(args: argparse.Namespace, test: pd.DataFrame) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="rf-bench-serve-"))
    env = {
        **os.environ,
        "RF_LOG_DIR": str(work / "logs"),
        "RF_API__HISTORY_DIR": str(work / "history"),
    }
    command = [
        sys.executable,
        "-m",
        "retail_forecast.cli",
        "serve",
        "--artifacts",
        str(Path(args.artifacts).resolve()),
        "--port",
        str(port),
    ]
    log = (work / "serve.log").open("wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None or time.monotonic() - t0 > 300:
                raise SystemExit(f"server did not become ready; see {work / 'serve.log'}")
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        print(
            f"serve: /ready 200 after {time.monotonic() - t0:.1f} s; RSS {rss_mb(proc.pid):.0f} MB"
        )
        bodies = [body(f) for f in series_frames(test)]
        full = body(test.drop(columns="id"))
        with httpx.Client(base_url=url, timeout=60) as http:
            seq = []
            for k in range(args.reps):
                t1 = time.perf_counter()
                r = http.post(
                    "/api/v1/predict",
                    content=bodies[k % len(bodies)],
                    headers={"Content-Type": "application/json"},
                )
                seq.append(time.perf_counter() - t1)
                assert r.status_code == 200, r.text[:300]
            print(f"HTTP 1 series x 16 days, sequential: {pct(seq)}")
            alls = []
            for _ in range(5):
                t1 = time.perf_counter()
                r = http.post(
                    "/api/v1/predict", content=full, headers={"Content-Type": "application/json"}
                )
                alls.append(time.perf_counter() - t1)
                assert r.status_code == 200, r.text[:300]
            print(
                f"HTTP all series ({len(test):,} rows, {len(full) / 1e6:.1f} MB body): {pct(alls)}"
            )
        rss_start = rss_mb(proc.pid)
        lat, errors, wall = load_run(url, bodies, clients=args.clients, seconds=args.seconds)
        rss_end = rss_mb(proc.pid)
        print(
            f"HTTP load, {args.clients} client threads x {args.seconds:.0f} s, 1 series x 16 days: "
            f"{pct(lat)}, {len(lat) / wall:.0f} req/s, errors {errors}"
        )
        print(f"service RSS before/after the load run: {rss_start:.0f} / {rss_end:.0f} MB")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    print(f"serve exit code after SIGTERM: {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "favorita-store-sales"
    )
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    built = build_dataset(args.data_dir, Settings(_env_file=None).data)  # type: ignore[call-arg]
    assert built.test is not None
    in_process(args, built.test, built.sales)
    if not args.skip_http:
        http_run(args, built.test)


if __name__ == "__main__":
    main()
