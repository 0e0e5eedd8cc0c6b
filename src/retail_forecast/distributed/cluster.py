"""Start or join a Dask cluster for ``--engine dask``; a lost worker becomes one clear error.

Without an address the engine starts a local cluster of worker processes (not threads: XGBoost,
NumPy and pandas each want a core of their own) bound to 127.0.0.1, one single-threaded worker
per core, the machine's memory split between them, and the scheduler in a process of its own
(see :func:`_local_cluster` for why not a ``LocalCluster``). It starts in a background thread
while the command reads its data, and each worker imports the engine's module as it starts:
the fixed cost that dominates the engine's overhead on a small panel (bench/RESULTS.md,
scale). With
``--scheduler ADDRESS`` it joins a running cluster (README.md, "Running on a cluster").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from retail_forecast.errors import ConfigError, DataValidationError, ForecastError

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

ENGINES = ("local", "dask")
LOCAL_HOST = "127.0.0.1"  # the local cluster is private to this machine
CONNECT_TIMEOUT_S = 30
EXTRA_HINT = "pip install 'retail-forecast[dask]'"
WORKER_MODULE = "retail_forecast.distributed.dask_xgboost"  # what the workers' tasks run


class ClusterError(ForecastError, RuntimeError):
    """The Dask cluster could not run a job (a worker lost, no scheduler); nothing written."""


class DaskEngine:
    """A connected Dask client; what the dask engine's models run on.

    The local cluster starts in the background (:func:`open_engine`): ``client`` waits for it
    the first time it is read, so the command reads its data while the workers start.
    """

    def __init__(self, client: Client | Future[Client]) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        if isinstance(self._client, Future):
            self._client = self._client.result()  # the start's own error, if it failed
        return self._client

    def workers(self) -> set[str]:
        """Addresses of the workers the scheduler knows now."""
        info = self.client.scheduler_info(n_workers=-1)  # the default lists only 5
        return set(info["workers"])


def check_engine(engine: str, scheduler: str | None) -> None:
    """Fail clearly on an unknown ``--engine`` or a ``--scheduler`` without the dask engine."""
    if engine not in ENGINES:
        raise DataValidationError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if scheduler is not None and engine != "dask":
        raise DataValidationError("--scheduler: only with --engine dask")


@contextmanager
def open_engine(
    engine: str, scheduler: str | None = None, *, n_workers: int | None = None
) -> Iterator[DaskEngine | None]:
    """Yield ``None`` for the local engine, else a client (started or joined) closed on exit."""
    check_engine(engine, scheduler)
    if engine == "local":
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(f"--engine dask needs the dask extra: {EXTRA_HINT}") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"--scheduler: cannot reach {scheduler!r}: {exc}") from None
        with client:
            yield DaskEngine(client)
        return
    workers = n_workers if n_workers is not None else max(1, os.cpu_count() or 1)
    started: list[Any] = []  # the cluster, then its client, to close in reverse order
    with ThreadPoolExecutor(1, thread_name_prefix="dask-start") as pool:
        starting = pool.submit(_start_local, workers, started)
        try:
            yield DaskEngine(starting)
        finally:
            wait([starting])  # a start still running when the command ends or fails
            for opened in reversed(started):
                opened.close()


def _start_local(n_workers: int, started: list[Any]) -> Client:
    """Start the local cluster and its client; each is recorded in ``started`` when up."""
    from distributed import Client

    cluster = _local_cluster(n_workers)
    started.append(cluster)
    client = Client(cluster)
    started.append(client)
    # the workers are processes that join on their own: wait, or work lands on fewer
    client.wait_for_workers(n_workers, timeout=CONNECT_TIMEOUT_S)
    logger.info("dask local cluster at %s", cluster.scheduler_address)
    return client


def _local_cluster(n_workers: int) -> Any:
    """Start the scheduler in a process of its own and ``n_workers`` single-thread workers.

    Not a ``LocalCluster``: its scheduler lives in this process, and XGBoost runs its
    collective tracker on the scheduler, where a worker lost mid-fit can end in a C++ abort
    (``terminate called after throwing an instance of 'dmlc::Error'``) that kills the command
    itself instead of failing it with a clear error (bench/RESULTS.md, scale;
    tests/distributed/test_worker_killed.py). The workers are ``Nanny`` processes started from
    here, as a LocalCluster starts them, each with the machine's memory / ``n_workers``;
    nothing listens beyond 127.0.0.1 and no dashboard is served.
    """
    from distributed.deploy.subprocess import SubprocessScheduler

    from distributed import Nanny, SpecCluster

    scheduler_kwargs = {"host": LOCAL_HOST, "port": 0, "dashboard": False}
    worker = {
        "cls": Nanny,
        "options": {
            "host": LOCAL_HOST,
            "nthreads": 1,
            "memory_limit": "auto",  # Nanny: the machine's memory x nthreads / cores
            "silence_logs": logging.ERROR,
            # imported while the worker starts (before it takes tasks), not by its first task
            "preload": [WORKER_MODULE],
        },
    }
    return SpecCluster(
        scheduler={"cls": SubprocessScheduler, "options": {"scheduler_kwargs": scheduler_kwargs}},
        workers=dict.fromkeys(range(n_workers), worker),
        silence_logs=logging.ERROR,
    )


@contextmanager
def guarded(engine: DaskEngine, what: str) -> Iterator[None]:
    """Turn a failure on the cluster into a :class:`ClusterError` that names lost workers.

    Our own errors (bad data, raised on a worker) pass unchanged. A killed worker makes
    XGBoost's collective fail on the others at once, so the fit ends with an error (the
    command exits non-zero before any bundle is written) rather than hanging.
    """
    before = engine.workers()
    try:
        yield
    except ForecastError:
        raise
    except Exception as exc:
        try:
            lost = sorted(before - engine.workers())
        except Exception:  # the scheduler itself is gone
            lost = sorted(before)
        reason = f"lost worker(s) {', '.join(lost)}" if lost else "a task failed"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(
            f"{what} failed on the Dask cluster ({reason}): {detail}; nothing was written, "
            "rerun the command (the local cluster restarts its workers)"
        ) from exc
