"""SageMakerPredictor vs LocalPredictor on a real bundle, through boto3 and the local endpoint.

Not a test. Starts the SageMaker runtime stand-in (``tests/inference/sagemaker_runtime_server.py``:
our container contract + the runtime path boto3 calls) in a subprocess on 127.0.0.1 over
``<artifacts>/current``, points a real boto3 ``sagemaker-runtime`` client at it, and forecasts
the real test.csv rows (1,782 series x 16 days) with both backends: wall time, InvokeEndpoint
calls, body sizes, and the largest relative difference between the backends' forecasts. Also a
few single-series requests.

    .venv/bin/python bench/sagemaker_local.py --artifacts /tmp/j/realrun/artifacts \
        --data-dir ../shared/data/favorita-store-sales
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from retail_forecast.aws.env import AwsEnvSettings
from retail_forecast.config import ApiConfig, AwsConfig, Settings
from retail_forecast.inference.local import LocalPredictor
from retail_forecast.inference.sagemaker import SageMakerPredictor
from retail_forecast.inference.sagemaker_runtime import make_runtime_client

RUNTIME_STAND_IN = (
    Path(__file__).resolve().parents[1] / "tests" / "inference" / "sagemaker_runtime_server.py"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_endpoint(artifacts: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(RUNTIME_STAND_IN), "--model-dir", str(artifacts),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("endpoint did not start")


def test_rows(data_dir: Path) -> pd.DataFrame:
    rows = pd.read_csv(data_dir / "test.csv", parse_dates=["date"])
    return rows.drop(columns="id")


def timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return times, out


def report_calls(calls: list[tuple[str, int]]) -> None:
    for kind in ("text/csv", "application/json"):
        k = [size for c, size in calls if c == kind]
        if k:
            print(f"  {kind}: {len(k)} calls, max body {max(k):,} B, total {sum(k):,} B")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single", type=int, default=10)
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        os.environ.setdefault(name, value)
    rows = test_rows(args.data_dir)
    port = free_port()
    started = time.perf_counter()
    endpoint = start_endpoint(args.artifacts, port)
    print(f"endpoint /ping 200 after {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            aws = AwsConfig(runtime_endpoint_url=f"http://127.0.0.1:{port}")
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                artifacts_dir=args.artifacts,
                api=ApiConfig(history_dir=Path(tmp) / "local"),
                aws=aws,
            )
            client = make_runtime_client(aws, AwsEnvSettings(_env_file=None))  # type: ignore[call-arg]
            sizes: list[tuple[str, int]] = []

            def record(request: Any, **_: Any) -> None:
                sizes.append((request.headers["Content-Type"].decode(), len(request.body)))

            client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", record)
            remote_settings = settings.model_copy(
                update={"api": ApiConfig(history_dir=Path(tmp) / "remote")}
            )
            remote = SageMakerPredictor.load(remote_settings, client=client)
            local = LocalPredictor.load(settings)
            t_local, out_local = timed(lambda: local.predict(rows), args.repeats)
            sizes.clear()
            t_remote, out_remote = timed(lambda: remote.predict(rows), args.repeats)
            per_call = sizes[: len(sizes) // args.repeats]
            a = out_remote["sales"].to_numpy()
            b = out_local["sales"].to_numpy()
            rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
            print(f"all series: {len(rows)} rows")
            print(f"  local  predict: {[round(t, 2) for t in t_local]} s")
            print(f"  remote predict: {[round(t, 2) for t in t_remote]} s")
            report_calls(per_call)
            print(f"  max relative difference remote vs local: {rel[b > 0].max():.3g}")
            print(f"  max abs difference: {np.abs(a - b).max():.3g}")
            # The LSTM alone (the real bundle's blend may give it weight 0 everywhere).
            history = local.bundle.read_parquet("history.parquet")
            t_ll, lstm_local = timed(lambda: local.model.lstm.predict(history, rows), 1)
            sizes.clear()
            t_lr, lstm_remote = timed(lambda: remote.local.model.lstm.predict(history, rows), 1)
            print(f"LSTM alone: local {t_ll[0]:.2f} s, remote {t_lr[0]:.2f} s")
            report_calls(sizes)
            diff = np.abs(lstm_remote["sales"].to_numpy() - lstm_local["sales"].to_numpy())
            print(f"  LSTM max abs difference remote vs local: {diff.max():.3g}")
            keys = rows[["store_nbr", "family"]].drop_duplicates().to_records(index=False)
            random.seed(0)
            single_l, single_r = [], []
            for store, family in random.sample(list(keys), args.single):
                one = rows[(rows["store_nbr"] == store) & (rows["family"] == family)]
                single_l += timed(lambda one=one: local.predict(one), 1)[0]
                single_r += timed(lambda one=one: remote.predict(one), 1)[0]
            print(
                f"single series x 16 days, n={args.single}: local p50 "
                f"{statistics.median(single_l) * 1e3:.0f} ms, remote p50 "
                f"{statistics.median(single_r) * 1e3:.0f} ms"
            )
            local.close()
            remote.close()
    finally:
        endpoint.terminate()
        endpoint.wait(timeout=30)


if __name__ == "__main__":
    main()
