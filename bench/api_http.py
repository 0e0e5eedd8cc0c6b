"""HTTP latency of the API over uvicorn on 127.0.0.1 (bounded; stops by itself).

Not a test. Serves the real Favorita domain (54 stores x 33 families, last 35 days of real
sales) through ``create_app`` with the vectorized seasonal-naive predictor of
bench/api_overhead.py, in a uvicorn subprocess (1 worker), then sends: 500 sequential
GET /health (the reference: HTTP stack and client alone), 500 sequential single-series
16-day requests, 1,000 of them from 8 client threads, and 5 all-series requests (28,512
rows). The client runs on the same 2 cores, so req/s is a floor.

    cd bench && ../.venv/bin/python api_http.py [--data-dir ../../shared/data/...]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from api_overhead import DEFAULT_DATA, NaivePredictor, body_for, load_history
from fastapi import FastAPI

from retail_forecast.app import create_app
from retail_forecast.config import Settings

HERE = Path(__file__).resolve().parent


def make_app() -> FastAPI:
    """Uvicorn factory (runs in the server process)."""
    data_dir = Path(os.environ.get("RF_BENCH_DATA_DIR", str(DEFAULT_DATA)))
    return create_app(Settings(), load_predictor=lambda _s: NaivePredictor(load_history(data_dir)))  # type: ignore[arg-type,return-value]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server never became ready")


def report(name: str, seconds: list[float], wall: float) -> None:
    pct = statistics.quantiles(seconds, n=100)
    print(
        f"{name}: n={len(seconds)} p50 {pct[49] * 1e3:.1f} ms, p95 {pct[94] * 1e3:.1f} ms, "
        f"p99 {pct[98] * 1e3:.1f} ms, {len(seconds) / wall:.0f} req/s"
    )


def run(url: str, one: bytes, full: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:

        def call(body: bytes) -> float:
            started = time.perf_counter()
            response = http.post("/api/v1/predict", content=body)
            if response.status_code != 200:
                raise SystemExit(f"status {response.status_code}: {response.text[:200]}")
            return time.perf_counter() - started

        for _ in range(50):
            call(one)
        health = []
        started = time.perf_counter()
        for _ in range(500):
            t0 = time.perf_counter()
            http.get("/health")
            health.append(time.perf_counter() - t0)
        report("reference: sequential GET /health", health, time.perf_counter() - started)
        started = time.perf_counter()
        report(
            "sequential single-series x 16 days",
            [call(one) for _ in range(500)],
            time.perf_counter() - started,
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            started = time.perf_counter()
            times = list(pool.map(lambda _: call(one), range(1000)))
        report("8 client threads, single-series", times, time.perf_counter() - started)
        big = [call(full) for _ in range(5)]
        print(
            f"all 1,782 series x 16 days (28,512 rows, {len(full):,} B): "
            f"median {statistics.median(big) * 1e3:.0f} ms, max {max(big) * 1e3:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    history = load_history(args.data_dir)
    predictor = NaivePredictor(history)
    one = body_for(predictor, (predictor.stores[0],), (predictor.families[0],))
    full = body_for(predictor, predictor.stores, predictor.families)
    port = free_port()
    env = {**os.environ, "RF_BENCH_DATA_DIR": str(args.data_dir), "RF_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api_http:make_app",
            "--factory",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        print(f"history_end {predictor.end}; server pid {proc.pid}")
        run(url, one, full)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


if __name__ == "__main__":
    main()
