"""MicroBatcher: a worker's concurrent small jobs, answered together by one call in the pool.

Dynamic batching as model servers do it (Triton's dynamic batcher, Ray Serve's ``@serve.batch``)
without a wait window: a job that arrives while a lane is free starts at once (alone when the
worker is idle, so an idle service answers as fast as without batching); jobs that arrive while
every lane is busy queue, and the next free lane takes up to ``max_jobs`` of them as one batch.
Under load the batches grow by themselves; the per-call work they share (a history snapshot,
16 feature and forest steps) is then paid once per batch instead of once per request.

One batch runs at a time while batches finish quickly: in one worker's process the GIL lets
only one of them compute anyway, and waiting for the running batch makes the next one larger
(2 workers, 10 users: 422 req/s with one lane against 321 with two, bench/RESULTS.md serve).
A second lane (up to ``lanes``, ``api.threads``) opens only once every running batch has run
``stall_s``: then a stuck batch does not block the next request (docs/RELIABILITY.md, promise 5). A
job past its deadline gets 504 while its batch runs on (threads are not cancelled); a job that
timed out before its batch started is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from retail_forecast.api.errors import past_deadline

logger = logging.getLogger(__name__)

# A single-series request takes 4.5-8 ms in-process on the 2-core VM and a batch of a few little
# more; a batch running this long is stuck or huge, and the next one gets a lane of its own.
STALL_S = 0.1

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")


@dataclass
class _Queued(Generic[JobT, ResultT]):
    job: JobT
    future: asyncio.Future[ResultT]


@dataclass
class BatchStats:
    """Counts since start (one worker): how large the batches actually were."""

    batches: int = 0
    jobs: int = 0
    largest: int = 0

    def __str__(self) -> str:
        mean = self.jobs / self.batches if self.batches else 0.0
        return (
            f"{self.jobs} jobs in {self.batches} batches (mean {mean:.2f}, largest {self.largest})"
        )


class MicroBatcher(Generic[JobT, ResultT]):
    """Run ``answer_batch(jobs)`` on ``executor``: per job, in order, its result or exception.

    Event-loop side only (one event loop per worker): no locks. ``answer_batch`` runs in a pool
    thread and must return one outcome per job rather than raise for one bad job.
    """

    def __init__(
        self,
        answer_batch: Callable[[Sequence[JobT]], Sequence[ResultT | Exception]],
        executor: Executor,
        *,
        max_jobs: int,
        lanes: int,
        stall_s: float = STALL_S,
    ) -> None:
        if max_jobs < 1 or lanes < 1:
            raise ValueError("max_jobs and lanes must be >= 1")
        self._answer_batch = answer_batch
        self._executor = executor
        self.max_jobs = max_jobs
        self.lanes = lanes
        self.stall_s = stall_s
        self._queue: deque[_Queued[JobT, ResultT]] = deque()
        self._started: dict[int, float] = {}  # running batches: id -> monotonic start
        self._recheck: asyncio.TimerHandle | None = None
        self.stats = BatchStats()

    async def submit(self, job: JobT, *, deadline: float) -> ResultT:
        """Answer ``job`` in the next batch; 504 (ApiError) past ``deadline`` (monotonic)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise past_deadline()
        loop = asyncio.get_running_loop()
        queued: _Queued[JobT, ResultT] = _Queued(job, loop.create_future())
        self._queue.append(queued)
        self._start_batches(loop)
        try:
            return await asyncio.wait_for(asyncio.shield(queued.future), remaining)
        except TimeoutError:
            queued.future.cancel()  # still queued: dropped; in a running batch: result ignored
            logger.warning("request ran past its deadline (micro-batched)")
            raise past_deadline() from None
        except asyncio.CancelledError:  # the request was cancelled (e.g. the server stops)
            queued.future.cancel()
            raise

    def _start_batches(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and self._lane_free():
            batch: list[_Queued[JobT, ResultT]] = []
            while self._queue and len(batch) < self.max_jobs:
                queued = self._queue.popleft()
                if not queued.future.done():  # timed out while queued
                    batch.append(queued)
            if not batch:
                return
            self._record(len(batch))
            try:
                running = self._executor.submit(self._answer_batch, [q.job for q in batch])
            except RuntimeError as exc:  # the pool is shut down (the worker is stopping)
                self._settle(batch, [exc] * len(batch))
                continue
            self._started[id(batch)] = time.monotonic()
            running.add_done_callback(functools.partial(_call_soon, loop, self._finish, batch))
        if self._queue and len(self._started) < self.lanes and self._recheck is None:
            # jobs wait behind a young batch: look again when it would count as stalled
            wait = max(self._started.values()) + self.stall_s - time.monotonic()
            self._recheck = loop.call_later(max(wait, 0.0), self._on_recheck, loop)

    def _lane_free(self) -> bool:
        if not self._started:
            return True
        if len(self._started) >= self.lanes:
            return False
        return time.monotonic() - max(self._started.values()) >= self.stall_s

    def _on_recheck(self, loop: asyncio.AbstractEventLoop) -> None:
        self._recheck = None
        self._start_batches(loop)

    def _finish(
        self, batch: list[_Queued[JobT, ResultT]], done: Future[Sequence[ResultT | Exception]]
    ) -> None:
        del self._started[id(batch)]
        if done.cancelled():
            for queued in batch:
                queued.future.cancel()
        else:
            error = done.exception()
            if error is not None and not isinstance(error, Exception):
                error = RuntimeError(f"batch failed: {error!r}")
            outcomes = done.result() if error is None else [error] * len(batch)
            if len(outcomes) != len(batch):
                outcomes = [RuntimeError("batch answered the wrong number of jobs")] * len(batch)
            self._settle(batch, outcomes)
        self._start_batches(asyncio.get_running_loop())

    @staticmethod
    def _settle(
        batch: list[_Queued[JobT, ResultT]], outcomes: Sequence[ResultT | Exception]
    ) -> None:
        for queued, outcome in zip(batch, outcomes, strict=True):
            if queued.future.done():  # the request already got its 504
                continue
            if isinstance(outcome, BaseException):
                queued.future.set_exception(outcome)
            else:
                queued.future.set_result(outcome)

    def _record(self, size: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.jobs += size
        stats.largest = max(stats.largest, size)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object
) -> None:
    """Hand ``callback`` to the event loop from a pool thread (ignored once the loop closed)."""
    with contextlib.suppress(RuntimeError):  # a closed loop: the worker and its requests are gone
        loop.call_soon_threadsafe(callback, *args)
