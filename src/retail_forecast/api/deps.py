"""Service state (readiness, predictor, bounded pool) and the Annotated dependencies."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Request

from retail_forecast.api.errors import ApiError, past_deadline
from retail_forecast.api.runtime.batching import MicroBatcher
from retail_forecast.api.runtime.recorder import MonitoringRecorder
from retail_forecast.config import Settings
from retail_forecast.inference.predictor import Predictor
from retail_forecast.monitoring.prediction_log import PredictionLog

logger = logging.getLogger(__name__)

T = TypeVar("T")
J = TypeVar("J")
R = TypeVar("R")
MONITORING_DRAIN_S = 5.0  # shutdown: write queued monitoring rows for at most this long


class ServiceState:
    """What one worker serves: readiness, the predictor, and the pool that runs CPU work."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status: Literal["loading", "ready", "failed"] = "loading"
        self.reason: str | None = None
        self._predictor: Predictor | None = None
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(
            max_workers=settings.api.threads, thread_name_prefix="rf-inference"
        )
        monitoring = settings.monitoring
        self.recorder = MonitoringRecorder(
            PredictionLog.from_config(monitoring), max_pending_rows=monitoring.log_queue_rows
        )
        self._batchers: dict[str, MicroBatcher[Any, Any]] = {}
        # /monitoring/drift answers (DriftResponse) per (model version, history end ISO date):
        # the history end moves once a day at most
        self.drift_cache: dict[tuple[str, str], Any] = {}

    def mark_ready(self, predictor: Predictor) -> None:
        with self._lock:
            self._predictor, self.status, self.reason = predictor, "ready", None

    def mark_failed(self, reason: str) -> None:
        with self._lock:
            self.status, self.reason = "failed", reason

    @property
    def predictor(self) -> Predictor | None:
        return self._predictor if self.status == "ready" else None

    def require_predictor(self) -> Predictor:
        predictor = self.predictor
        if predictor is None and self.status == "failed":
            # The load is never retried in this process (promise 1): no Retry-After.
            raise ApiError(
                503, "the model failed to load; this process will not serve it", error="load_failed"
            )
        if predictor is None:
            raise ApiError(
                503,
                f"the model is not ready (status: {self.status}); retry later",
                error="not_ready",
                headers={"Retry-After": str(self.settings.api.retry_after_s)},
            )
        return predictor

    async def run(self, work: Callable[[], T], *, deadline: float) -> T:
        """Run CPU-bound ``work`` in the bounded pool; 504 past ``deadline`` (not cancelled)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise past_deadline()
        future = self.executor.submit(work)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), remaining)
        except TimeoutError:
            future.cancel()  # drops it if still queued; a running thread finishes on its own
            logger.warning(
                "request ran past its deadline of %.1f s", self.settings.api.request_timeout_s
            )
            raise past_deadline() from None

    def batcher(
        self, name: str, answer_batch: Callable[[Sequence[J]], Sequence[R | Exception]]
    ) -> MicroBatcher[J, R]:
        """Return the worker's micro-batcher ``name`` on the bounded pool (made on first use)."""
        batcher = self._batchers.get(name)
        if batcher is None:
            batcher = MicroBatcher(
                answer_batch,
                self.executor,
                max_jobs=max(self.settings.api.micro_batch_requests, 1),
                lanes=self.settings.api.threads,
            )
            self._batchers[name] = batcher
        return batcher

    def close(self) -> None:
        for name, batcher in self._batchers.items():
            logger.info("micro-batches %s: %s", name, batcher.stats)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.recorder.close(MONITORING_DRAIN_S)


def get_state(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if not isinstance(state, ServiceState):
        raise ApiError(503, "the service is starting; retry later", error="not_ready")
    return state


def request_deadline(request: Request) -> float:
    """Return the deadline RequestIdMiddleware set when the request arrived."""
    deadline = getattr(request.state, "deadline", None)
    if isinstance(deadline, float):
        return deadline
    return time.monotonic() + get_state(request).settings.api.request_timeout_s


# FastAPI sends a sync dependency to its thread pool: a thread hop, and a GIL hand-over while
# inference threads compute, per request for an attribute lookup. These run on the event loop.


async def state_dependency(request: Request) -> ServiceState:
    return get_state(request)


async def predictor_dependency(request: Request) -> Predictor:
    return get_state(request).require_predictor()


StateDep = Annotated[ServiceState, Depends(state_dependency)]
PredictorDep = Annotated[Predictor, Depends(predictor_dependency)]
