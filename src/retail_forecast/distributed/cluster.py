"""Start or join a Dask cluster for ``--engine dask``; a lost worker becomes one clear error.

Without an address the engine starts a local cluster of worker processes (not threads: XGBoost,
NumPy and pandas each want a core of their own) bound to 127.0.0.1, one single-threaded worker
per core, the machine's memory split between them, and the scheduler in a process of its own
(see :func:`_local_cluster` for why not a ``LocalCluster``). With
``--scheduler ADDRESS`` it joins a running cluster (README.md, "Running on a cluster").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retail_forecast.errors import ConfigError, DataValidationError, ForecastError

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

ENGINES = ("local", "dask")
LOCAL_HOST = "127.0.0.1"  # the local cluster is private to this machine
CONNECT_TIMEOUT_S = 30
EXTRA_HINT = "pip install 'retail-forecast[dask]'"


class ClusterError(ForecastError, RuntimeError):
    """The Dask cluster could not run a job (a worker lost, no scheduler); nothing written."""


@dataclass(frozen=True)
class DaskEngine:
    """A connected Dask client; what the dask engine's models run on."""

    client: Client

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


def local_cluster_options(n_workers: int | None = None) -> dict[str, Any]:
    """Local cluster arguments sized to this machine: one single-threaded process per core."""
    workers = n_workers if n_workers is not None else max(1, os.cpu_count() or 1)
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": LOCAL_HOST,
        "dashboard_address": None,  # no web server: nothing listens beyond the workers
        "memory_limit": "auto",  # the machine's memory / n_workers each
        "silence_logs": logging.ERROR,
    }


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
    options = local_cluster_options(n_workers)
    with _local_cluster(options) as cluster, Client(cluster) as client:
        # the workers are processes that join on their own: wait, or work lands on fewer
        client.wait_for_workers(options["n_workers"], timeout=CONNECT_TIMEOUT_S)
        logger.info("dask local cluster at %s", cluster.scheduler_address)
        yield DaskEngine(client)


def _local_cluster(options: dict[str, Any]) -> Any:
    """Start the scheduler in a process of its own and the workers as a LocalCluster does.

    Not a ``LocalCluster``: its scheduler lives in this process, and XGBoost runs its
    collective tracker on the scheduler, where a worker lost mid-fit can end in a C++ abort
    (``terminate called after throwing an instance of 'dmlc::Error'``) that killed the command
    itself in 2 of 4 trials instead of failing it with a clear error; with the scheduler in its
    own process, 8 of 8 trials ended in the clear error (tests/distributed/test_worker_killed).
    The workers are ``Nanny`` processes started from here, as LocalCluster starts them (not
    distributed's ``SubprocessCluster``, which starts every worker as a new interpreter too).
    """
    from distributed.deploy.subprocess import SubprocessScheduler

    from distributed import Nanny, SpecCluster

    scheduler_kwargs = {
        "host": options["host"],
        "port": 0,
        "dashboard": False,
        "dashboard_address": options["dashboard_address"],
    }
    worker = {
        "cls": Nanny,
        "options": {
            "host": options["host"],
            "nthreads": options["threads_per_worker"],
            "memory_limit": options["memory_limit"],
            "silence_logs": options["silence_logs"],
        },
    }
    return SpecCluster(
        scheduler={"cls": SubprocessScheduler, "options": {"scheduler_kwargs": scheduler_kwargs}},
        workers=dict.fromkeys(range(options["n_workers"]), worker),
        silence_logs=options["silence_logs"],
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
