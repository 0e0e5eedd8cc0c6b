"""A history store that cannot be written, and a full disk, under a real uvicorn (promises 30, 31).

Each server is ``uvicorn retail_forecast.app:create_app --factory`` on 127.0.0.1 over a real
tiny bundle, its settings from the environment. The faults are real (tests/storage/fs_faults.py):
a history directory under a regular file (any user, root included), a directory without write
permission (root's child loses CAP_DAC_OVERRIDE), a read-only bind mount and a full tmpfs (root
with mount permission; skipped with the reason otherwise).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
sys.path.insert(0, str(Path(__file__).parents[1] / "storage"))

from bundle_helpers import TinyBundle, build_tiny_bundle
from fs_faults import drop_dac_override, fill, read_only_bind, tiny_tmpfs, unwritable

from retail_forecast.schema import DATE, FAMILY, STORE
from retail_forecast.storage import HistoryStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The real app under uvicorn in a subprocess; its log (stdout) goes to a file."""

    def __init__(
        self,
        bundle: TinyBundle,
        workdir: Path,
        history_dir: Path,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = (workdir / f"server-{self.port}.log").open("w+b")
        env = {
            **os.environ,
            "RF_ARTIFACTS_DIR": str(bundle.artifacts),
            "RF_API__HISTORY_DIR": str(history_dir),
            "RF_LOG_DIR": str(workdir / "logs"),
            "RF_MONITORING__DB_PATH": str(workdir / "monitoring.sqlite"),
        }
        command = [sys.executable, "-m", "uvicorn", "retail_forecast.app:create_app", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(
            command,
            cwd=workdir,  # no .env of the checkout
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )

    def ready(self, timeout: float = 90) -> httpx.Response:
        """Wait for /ready's first answer that is not "loading"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                answer = httpx.get(self.url + "/ready", timeout=2)
                if answer.json().get("status") != "loading":
                    return answer
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"/ready kept loading: {self.output()}")

    def post(self, path: str, rows: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(self.url + path, json={"rows": rows}, timeout=30)

    def history_end(self) -> str:
        answer = httpx.get(self.url + "/api/v1/models", timeout=10)
        return str(answer.json()["domain"]["history_end"])

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def start(bundle: TinyBundle, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def started(history_dir: Path, preexec_fn: Callable[[], None] | None = None) -> Server:
        server = Server(bundle, tmp_path / f"work-{len(servers)}", history_dir, preexec_fn)
        servers.append(server)
        return server

    yield started
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("store-faults-bundle"))


def series(bundle: TinyBundle) -> list[tuple[int, str]]:
    stores = sorted(int(s) for s in bundle.sales[STORE].unique())
    return [(s, f) for s in stores for f in sorted(str(f) for f in bundle.sales[FAMILY].unique())]


def day(bundle: TinyBundle, k: int) -> str:
    end: dt.date = bundle.sales[DATE].max().date()
    return (end + dt.timedelta(days=k)).isoformat()


def forecast_rows(bundle: TinyBundle, first: int) -> list[dict[str, Any]]:
    """Every series for the 16 days from history end + ``first``."""
    return [
        {"date": day(bundle, first + k), "store_nbr": s, "family": f, "onpromotion": 0}
        for k in range(16)
        for s, f in series(bundle)
    ]


def actual_rows(bundle: TinyBundle, k: int) -> list[dict[str, Any]]:
    """Every series' observed sales of history end + ``k``."""
    return [
        {"date": day(bundle, k), "store_nbr": s, "family": f, "sales": 10.0 + i, "onpromotion": 0}
        for i, (s, f) in enumerate(series(bundle))
    ]


@dataclasses.dataclass(frozen=True)
class Reference:
    """A writable service's answers: before and after one day of actuals, and its store."""

    before: Any  # predictions from the bundle's history (history end + 1 ..)
    after: Any  # predictions once day 1 is appended (history end + 2 ..)
    history: Path  # the store's files after a clean shutdown
    version: str


@pytest.fixture(scope="module")
def reference(bundle: TinyBundle, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("reference")
    server = Server(bundle, root / "work", root / "history")
    try:
        assert server.ready().json()["status"] == "ready", server.output()
        before = server.post("/api/v1/predict", forecast_rows(bundle, 1))
        appended = server.post("/api/v1/actuals", actual_rows(bundle, 1))
        assert appended.status_code == 200, appended.text
        assert appended.json()["appended"] == len(series(bundle))
        after = server.post("/api/v1/predict", forecast_rows(bundle, 2))
        assert (before.status_code, after.status_code) == (200, 200)
    finally:
        server.stop()
    version = before.json()["model_version"]
    return Reference(before.json(), after.json(), root / "history", version)


def copy_store(reference: Reference, into: Path) -> Path:
    """The reference store's files (its lock file left behind) in a new history directory."""
    into.mkdir(parents=True)
    for path in reference.history.glob(f"{reference.version}.sqlite*"):
        if not path.name.endswith(".lock"):
            shutil.copy2(path, into / path.name)
    return into / f"{reference.version}.sqlite"


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def assert_refuses_actuals(server: Server, bundle: TinyBundle, db_path: Path, k: int) -> None:
    """POST /actuals is 503 naming the database and what to do; nothing moves."""
    end = server.history_end()
    refused = server.post("/api/v1/actuals", actual_rows(bundle, k))
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error"] == "read_only"
    assert str(db_path) in body["message"]
    assert "writable" in body["message"]
    assert "restart" in body["message"]
    assert "retry-after" not in refused.headers  # it does not pass by itself
    assert server.history_end() == end
    assert str(db_path) in server.output()  # the log names the path


def assert_degraded(server: Server, version: str) -> dict[str, Any]:
    answer = server.ready()
    assert answer.status_code == 200, server.output()
    ready: dict[str, Any] = answer.json()
    assert ready["status"] == "degraded"
    assert ready["model_version"] == version
    assert "cannot be written" in ready["reason"]
    assert "actuals are refused" in ready["reason"]
    return ready


def test_p30_history_dir_under_a_regular_file_serves_the_bundle_history_read_only(
    start: Callable[..., Server], bundle: TinyBundle, reference: Reference, tmp_path: Path
) -> None:
    """mkdir fails with NotADirectoryError for root too: this runs wherever the suite runs."""
    regular = tmp_path / "a-file"
    regular.write_text("not a directory")
    history = regular / "history"
    server = start(history)
    ready = assert_degraded(server, reference.version)
    assert "not a directory" in ready["reason"]
    assert "bundle" in ready["reason"]
    assert str(tmp_path) not in ready["reason"]  # /ready is open: no paths in it
    forecast = server.post("/api/v1/predict", forecast_rows(bundle, 1))
    assert forecast.status_code == 200, forecast.text
    assert forecast.json() == reference.before  # the same forecasts as a writable service
    assert_refuses_actuals(server, bundle, history / f"{reference.version}.sqlite", 1)
    assert regular.read_text() == "not a directory"


def serves_the_existing_store(server: Server, bundle: TinyBundle, reference: Reference) -> None:
    """Forecasts come from the database, actuals appended before included, not the bundle."""
    ready = assert_degraded(server, reference.version)
    assert "existing store" in ready["reason"]
    assert server.history_end() == day(bundle, 1)
    forecast = server.post("/api/v1/predict", forecast_rows(bundle, 2))
    assert forecast.status_code == 200, forecast.text
    assert forecast.json() == reference.after
    stale = server.post("/api/v1/predict", forecast_rows(bundle, 1))
    assert stale.status_code == 422  # day 1 is history now


@pytest.mark.parametrize("closed", [False, True], ids=["as-the-server-left-it", "closed"])
def test_p30_existing_store_in_a_directory_without_write_permission_is_served_read_only(
    start: Callable[..., Server],
    bundle: TinyBundle,
    reference: Reference,
    tmp_path: Path,
    closed: bool,
) -> None:
    """Without -shm and -wal (closed), SQLite reads the file as immutable; else through the WAL."""
    history = tmp_path / "history"
    db_path = copy_store(reference, history)
    if closed:
        HistoryStore.open(db_path).close()  # the last connection checkpoints and removes the WAL
        assert [p.name for p in history.iterdir()] == [db_path.name]
    else:
        assert db_path.with_name(f"{db_path.name}-wal").stat().st_size > 0  # appended, unreplayed
    before = digests(history)
    with unwritable(history):
        server = start(history, preexec_fn=drop_dac_override)
        serves_the_existing_store(server, bundle, reference)
        assert_refuses_actuals(server, bundle, db_path, 2)
        server.stop()
    assert digests(history) == before


def test_p30_existing_store_on_a_read_only_bind_mount_is_served_read_only(
    start: Callable[..., Server], bundle: TinyBundle, reference: Reference, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    db_path = copy_store(reference, history)
    before = digests(history)
    with read_only_bind(history):
        server = start(history)
        serves_the_existing_store(server, bundle, reference)
        assert_refuses_actuals(server, bundle, db_path, 2)
        server.stop()
    assert digests(history) == before


def test_p31_full_disk_under_the_store_is_507_and_nothing_partial_is_written(
    start: Callable[..., Server], bundle: TinyBundle, reference: Reference, tmp_path: Path
) -> None:
    with tiny_tmpfs(tmp_path / "small", size_kib=2048) as small:
        server = start(small)
        assert server.ready().json()["status"] == "ready", server.output()
        filler = fill(small)
        full = server.post("/api/v1/actuals", actual_rows(bundle, 1))
        assert full.status_code == 507, full.text
        body = full.json()
        assert body["error"] == "insufficient_storage"
        db_path = small / f"{reference.version}.sqlite"
        assert str(db_path) in body["message"]
        assert "full" in body["message"]
        assert "nothing of this request was stored" in body["message"]
        assert str(db_path) in server.output()
        assert server.history_end() == day(bundle, 0)

        filler.unlink()  # space is back: the same request is new to the store, in full
        again = server.post("/api/v1/actuals", actual_rows(bundle, 1))
        assert again.status_code == 200, again.text
        assert again.json()["appended"] == len(series(bundle))
        assert server.history_end() == day(bundle, 1)
        assert server.post("/api/v1/predict", forecast_rows(bundle, 2)).json() == reference.after
        server.stop()
