"""`retail-forecast serve` under a real uvicorn on 127.0.0.1 with a real tiny bundle (issue 5)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from bundle_helpers import TinyBundle, build_tiny_bundle

from retail_forecast.inference.local import LocalPredictor
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("serve-bundle"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """`python -m retail_forecast.cli serve` in a subprocess, logging to a file."""

    def __init__(self, bundle: TinyBundle, workdir: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = (workdir / f"serve-{self.port}.log").open("w+b")
        env = {
            **os.environ,
            "RF_LOG_DIR": str(workdir / "logs"),
            "RF_API__HISTORY_DIR": str(workdir / "history"),
        }
        command = [sys.executable, "-m", "retail_forecast.cli", "serve"]
        command += ["--artifacts", str(bundle.artifacts), "--port", str(self.port), *extra]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def ready_statuses(self, timeout: float = 60) -> list[int]:
        """Poll /ready from the first answer until 200; return every status seen."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                status = httpx.get(self.url + "/ready", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.01)
                continue
            seen.append(status)
            if status == 200:
                return seen
            time.sleep(0.01)
        raise AssertionError(f"/ready never answered 200 (saw {seen[-5:]}): {self.output()}")

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "service"


@pytest.fixture
def service(bundle: TinyBundle, workdir: Path) -> Iterator[Service]:
    started = Service(bundle, workdir)
    yield started
    started.stop()
    started.log.close()


def rows_for(
    bundle: TinyBundle,
    *,
    start: dt.date,
    days: int = 16,
    series: list[tuple[int, str]] | None = None,
) -> list[dict[str, Any]]:
    stores = sorted(int(s) for s in bundle.sales[STORE].unique())
    families = sorted(str(f) for f in bundle.sales[FAMILY].unique())
    keys = series or [(s, f) for s in stores for f in families]
    return [
        {
            "date": (start + dt.timedelta(days=k)).isoformat(),
            "store_nbr": store,
            "family": family,
            "onpromotion": (store + k) % 3,
        }
        for store, family in keys
        for k in range(days)
    ]


def as_frame(rows: list[dict[str, Any]], families: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return pd.DataFrame(
        {
            DATE: pd.to_datetime(frame["date"]),
            STORE: frame["store_nbr"].astype("int64"),
            FAMILY: pd.Categorical(frame["family"], categories=families),
            PROMO: frame["onpromotion"].astype("int64"),
        }
    )


def in_process(
    bundle: TinyBundle, history: pd.DataFrame, rows: list[dict[str, Any]]
) -> list[float]:
    model = LocalPredictor.from_bundle(_bundle(bundle)).model
    families = sorted(str(f) for f in bundle.sales[FAMILY].unique())
    return [float(v) for v in model.predict(history, as_frame(rows, families))[TARGET]]


def _bundle(bundle: TinyBundle) -> Any:
    from retail_forecast.artifacts import ModelBundle

    return ModelBundle.open_current(bundle.artifacts)


def test_p01_serve_is_503_until_warm_then_predicts(bundle: TinyBundle, service: Service) -> None:
    statuses = service.ready_statuses()
    assert statuses[-1] == 200
    assert statuses[0] == 503, f"the first /ready answer came after warm-up: {statuses[:3]}"
    assert set(statuses[:-1]) == {503}
    end = bundle.sales[DATE].max().date()
    first = end + dt.timedelta(days=1)

    one = rows_for(bundle, start=first, series=[(2, "BEVERAGES")])
    response = service.post("/api/v1/predict", {"rows": one})
    assert response.status_code == 200, response.text
    got = [p["sales"] for p in response.json()["predictions"]]
    assert got == in_process(bundle, bundle.sales, one)

    everything = rows_for(bundle, start=first)
    response = service.post("/api/v1/predict", {"rows": everything})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 3 * 4 * 16
    assert [(p["store_nbr"], p["family"], p["date"]) for p in predictions] == [
        (r["store_nbr"], r["family"], r["date"]) for r in everything
    ]
    assert [p["sales"] for p in predictions] == in_process(bundle, bundle.sales, everything)
    code = service.stop()
    assert code == 0, f"exit code {code}: {service.output()}"


def test_actuals_move_the_window_and_survive_a_restart(
    bundle: TinyBundle, service: Service, workdir: Path
) -> None:
    service.ready_statuses()
    end = bundle.sales[DATE].max().date()
    first = end + dt.timedelta(days=1)
    actuals = [
        {**row, "sales": 10.0 + k} for k, row in enumerate(rows_for(bundle, start=first, days=1))
    ]
    response = service.post("/api/v1/actuals", {"rows": actuals})
    assert response.status_code == 200, response.text
    assert response.json()["appended"] == 12
    assert response.json()["history_end"] == first.isoformat()

    # The window shifted by one day: the old first day is refused, day 17 is served.
    shifted = rows_for(bundle, start=first + dt.timedelta(days=1), series=[(1, "AUTOMOTIVE")])
    old = rows_for(bundle, start=first, series=[(1, "AUTOMOTIVE")])
    assert service.post("/api/v1/predict", {"rows": old}).status_code == 422
    response = service.post("/api/v1/predict", {"rows": shifted})
    assert response.status_code == 200, response.text
    extended = pd.concat(
        [
            bundle.sales,
            as_frame(actuals, sorted(bundle.sales[FAMILY].astype(str).unique())).assign(
                sales=[a["sales"] for a in actuals], is_closed=False
            ),
        ],
        ignore_index=True,
    ).sort_values([STORE, FAMILY, DATE], ignore_index=True)
    expected = in_process(bundle, extended, shifted)
    assert [p["sales"] for p in response.json()["predictions"]] == expected
    code = service.stop()
    assert code == 0, f"exit code {code}: {service.output()}"

    restarted = Service(bundle, workdir)
    try:
        restarted.ready_statuses()
        models = httpx.get(restarted.url + "/api/v1/models", timeout=10).json()
        assert models["domain"]["history_end"] == first.isoformat()
        again = restarted.post("/api/v1/predict", {"rows": shifted})
        assert again.status_code == 200, again.text
        assert [p["sales"] for p in again.json()["predictions"]] == expected
        # the same actuals again are a no-op, a different value is a conflict
        assert restarted.post("/api/v1/actuals", {"rows": actuals}).json()["appended"] == 0
        changed = [{**actuals[0], "sales": actuals[0]["sales"] + 1}]
        assert restarted.post("/api/v1/actuals", {"rows": changed}).status_code == 409
    finally:
        code = restarted.stop()
        restarted.log.close()


def test_forecast_command_writes_a_submission(bundle: TinyBundle, tmp_path: Path) -> None:
    out = tmp_path / "submission.csv"
    env = {**os.environ, "RF_LOG_DIR": str(tmp_path / "logs")}
    command = [sys.executable, "-m", "retail_forecast.cli", "forecast"]
    command += ["--data-dir", str(bundle.data_dir), "--out", str(out)]
    command += ["--artifacts", str(bundle.artifacts)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    frame = pd.read_csv(out, float_precision="round_trip")
    assert list(frame.columns) == ["id", "sales"]
    assert len(frame) == len(bundle.test)
    assert np.isfinite(frame["sales"]).all()
    assert (frame["sales"] >= 0).all()


def test_two_workers_share_the_history_and_stop_cleanly(bundle: TinyBundle, workdir: Path) -> None:
    service = Service(bundle, workdir, "--workers", "2")
    try:
        service.ready_statuses()
        deadline = time.monotonic() + 60
        while service.output().count("model ready") < 2:  # both workers loaded the bundle
            assert time.monotonic() < deadline, service.output()
            time.sleep(0.1)
        end = bundle.sales[DATE].max().date()
        first = end + dt.timedelta(days=1)
        actuals = [{**row, "sales": 5.0} for row in rows_for(bundle, start=first, days=1)]
        response = service.post("/api/v1/actuals", {"rows": actuals})
        assert response.status_code == 200, response.text
        day_17 = rows_for(bundle, start=first + dt.timedelta(days=1), series=[(2, "BEVERAGES")])
        old_day_1 = rows_for(bundle, start=first, days=1, series=[(2, "BEVERAGES")])

        def check(_: int) -> tuple[str, int, int]:
            with httpx.Client(timeout=30) as client:  # a new connection: any worker may answer
                described = client.get(service.url + "/api/v1/models").json()
                fresh = client.post(service.url + "/api/v1/predict", json={"rows": day_17})
                stale = client.post(service.url + "/api/v1/predict", json={"rows": old_day_1})
            return described["domain"]["history_end"], fresh.status_code, stale.status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = set(pool.map(check, range(16)))
        assert answers == {(first.isoformat(), 200, 422)}
        # each worker listens on its own SO_REUSEPORT socket: the kernel spreads connections
        assert listening_sockets(service.port) == 2
    finally:
        code = service.stop()
        service.log.close()
    assert code == 0, service.output()


def listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN state on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


def worker_pids(parent: int) -> set[int]:
    """Processes whose parent is ``parent`` (from /proc/<pid>/stat)."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == parent:
            pids.add(int(stat.parent.name))
    return pids


@pytest.mark.slow
def test_p09_a_killed_worker_is_replaced_and_stays_out_of_traffic_until_ready(
    bundle: TinyBundle, workdir: Path
) -> None:
    service = Service(bundle, workdir, "--workers", "2")
    try:
        # a worker listens only once its bundle is loaded: /ready never answers 503
        assert service.ready_statuses() == [200], service.output()
        deadline = time.monotonic() + 60
        while service.output().count("model ready") < 2 or listening_sockets(service.port) < 2:
            assert time.monotonic() < deadline, service.output()
            time.sleep(0.1)
        workers = worker_pids(service.proc.pid)
        assert len(workers) >= 2, workers
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)
        statuses: list[int] = []
        failed = 0
        deadline = time.monotonic() + 60
        while True:  # traffic while the supervisor replaces the worker
            try:
                statuses.append(httpx.get(service.url + "/ready", timeout=5).status_code)
            except httpx.TransportError:
                failed += 1  # a connection the killed worker held
            replaced = service.output().count("model ready") >= 3
            if (
                replaced
                and listening_sockets(service.port) == 2
                and victim not in worker_pids(service.proc.pid)
            ):
                break
            assert time.monotonic() < deadline, service.output()
            time.sleep(0.02)
        assert set(statuses) == {200}, statuses
        assert failed <= 3, (failed, len(statuses))  # only what the killed worker held
        end = bundle.sales[DATE].max().date()
        rows = rows_for(bundle, start=end + dt.timedelta(days=1), series=[(2, "BEVERAGES")])
        with httpx.Client(timeout=30) as client:  # served again after the replacement
            answers = {
                client.post(service.url + "/api/v1/predict", json={"rows": rows}).status_code
                for _ in range(8)
            }
        assert answers == {200}
    finally:
        code = service.stop()
        service.log.close()
    assert code == 0, service.output()
