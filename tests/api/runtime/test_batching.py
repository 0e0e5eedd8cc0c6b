"""MicroBatcher: concurrent jobs share a call, each gets its own outcome, deadlines hold."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from retail_forecast.api.errors import ApiError
from retail_forecast.api.runtime.batching import MicroBatcher

pytestmark = pytest.mark.timeout(30)


class Doubler:
    """Answers each job with job * 2; ``gate`` holds a batch that contains a negative job."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def __call__(self, jobs: Sequence[int]) -> list[int | Exception]:
        self.calls.append(list(jobs))
        self.started.set()
        if any(job < 0 for job in jobs):
            assert self.gate.wait(10)
        return [ValueError(f"bad job {job}") if job == 13 else job * 2 for job in jobs]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def later(seconds: float) -> float:
    return time.monotonic() + seconds


async def wait_for_call(answer: Doubler) -> None:
    while not answer.started.is_set():
        await asyncio.sleep(0.005)


async def behind_a_busy_lane(
    batcher: MicroBatcher[int, int], answer: Doubler, jobs: Sequence[int]
) -> list[int | BaseException]:
    """Start job -1 (held at the gate), queue ``jobs`` behind it, open the gate: all outcomes."""
    first = asyncio.ensure_future(batcher.submit(-1, deadline=later(10)))
    await wait_for_call(answer)  # the lane is busy with [-1]
    rest = [asyncio.ensure_future(batcher.submit(j, deadline=later(10))) for j in jobs]
    await asyncio.sleep(0.05)
    answer.gate.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_jobs_arriving_while_the_lane_is_busy_share_the_next_call(
    pool: ThreadPoolExecutor,
) -> None:
    answer = Doubler()
    # a second lane would open only for a batch running 10 s: the others wait for this one
    batcher = MicroBatcher(answer, pool, max_jobs=8, lanes=2, stall_s=10)
    assert asyncio.run(behind_a_busy_lane(batcher, answer, (1, 2, 3))) == [-2, 2, 4, 6]
    assert answer.calls == [[-1], [1, 2, 3]]  # an idle lane starts at once; the rest wait
    assert (batcher.stats.batches, batcher.stats.jobs, batcher.stats.largest) == (2, 4, 3)


def test_a_batch_holds_at_most_max_jobs(pool: ThreadPoolExecutor) -> None:
    answer = Doubler()
    batcher = MicroBatcher(answer, pool, max_jobs=2, lanes=1)
    assert asyncio.run(behind_a_busy_lane(batcher, answer, range(5))) == [-2, 0, 2, 4, 6, 8]
    assert answer.calls == [[-1], [0, 1], [2, 3], [4]]


def test_one_jobs_error_reaches_only_that_job(pool: ThreadPoolExecutor) -> None:
    answer = Doubler()
    batcher = MicroBatcher(answer, pool, max_jobs=8, lanes=1)
    first, five, bad, seven = asyncio.run(behind_a_busy_lane(batcher, answer, (5, 13, 7)))
    assert (first, five, seven) == (-2, 10, 14)
    assert isinstance(bad, ValueError)
    assert "bad job 13" in str(bad)
    assert answer.calls[1] == [5, 13, 7]


def test_a_failing_batch_call_fails_each_of_its_jobs_and_the_next_batch_runs(
    pool: ThreadPoolExecutor,
) -> None:
    answer = Doubler()

    def explode_on_zero(jobs: Sequence[int]) -> list[int | Exception]:
        if 0 in jobs:
            answer.calls.append(list(jobs))
            raise RuntimeError("model crashed")
        return answer(jobs)

    batcher = MicroBatcher(explode_on_zero, pool, max_jobs=2, lanes=1)
    first, crashed, also_crashed, fine = asyncio.run(behind_a_busy_lane(batcher, answer, (0, 1, 2)))
    assert isinstance(crashed, RuntimeError)
    assert isinstance(also_crashed, RuntimeError)
    assert (first, fine) == (-2, 4)
    assert answer.calls == [[-1], [0, 1], [2]]


def test_past_its_deadline_a_job_gets_504_and_a_queued_one_is_never_run(
    pool: ThreadPoolExecutor,
) -> None:
    answer = Doubler()

    async def scenario() -> tuple[BaseException | int, ...]:
        batcher = MicroBatcher(answer, pool, max_jobs=8, lanes=1)
        stuck = asyncio.ensure_future(batcher.submit(-1, deadline=later(0.2)))
        await wait_for_call(answer)
        queued = asyncio.ensure_future(batcher.submit(4, deadline=later(0.2)))
        patient = asyncio.ensure_future(batcher.submit(5, deadline=later(10)))
        results = await asyncio.gather(stuck, queued, return_exceptions=True)
        answer.gate.set()  # the stuck batch finishes after its job's 504: the result is dropped
        return (*results, await patient)

    stuck, queued, patient = asyncio.run(scenario())
    for outcome in (stuck, queued):
        assert isinstance(outcome, ApiError)
        assert outcome.status == 504
    assert patient == 10
    assert answer.calls == [[-1], [5]]  # job 4 timed out while queued: never answered
    with pytest.raises(ApiError, match="deadline"):
        asyncio.run(MicroBatcher(answer, pool, max_jobs=8, lanes=1).submit(1, deadline=later(-1)))


def test_a_cancelled_request_leaves_the_queue(pool: ThreadPoolExecutor) -> None:
    answer = Doubler()

    async def scenario() -> int:
        batcher = MicroBatcher(answer, pool, max_jobs=8, lanes=1)
        first = asyncio.ensure_future(batcher.submit(-1, deadline=later(10)))
        await wait_for_call(answer)
        gone = asyncio.ensure_future(batcher.submit(4, deadline=later(10)))
        kept = asyncio.ensure_future(batcher.submit(5, deadline=later(10)))
        await asyncio.sleep(0.02)
        gone.cancel()
        await asyncio.sleep(0.02)  # the cancellation reaches the queued job
        answer.gate.set()
        assert await first == -2
        return await kept

    assert asyncio.run(scenario()) == 10
    assert answer.calls == [[-1], [5]]


def test_a_stuck_batch_leaves_the_other_lane_to_the_next_job(pool: ThreadPoolExecutor) -> None:
    answer = Doubler()

    async def scenario() -> int:
        batcher = MicroBatcher(answer, pool, max_jobs=8, lanes=2, stall_s=0.2)
        stuck = asyncio.ensure_future(batcher.submit(-1, deadline=later(10)))
        await wait_for_call(answer)
        started = time.monotonic()
        served = await batcher.submit(21, deadline=later(2))  # not queued behind the stuck one
        assert not stuck.done()
        assert 0.1 <= time.monotonic() - started < 1.5  # it waited for the stall time only
        answer.gate.set()
        assert await stuck == -2
        return served

    assert asyncio.run(scenario()) == 42
    assert answer.calls == [[-1], [21]]


def test_a_shut_down_pool_fails_the_job_instead_of_hanging() -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    executor.shutdown()
    batcher = MicroBatcher(Doubler(), executor, max_jobs=4, lanes=1)
    with pytest.raises(RuntimeError, match="shutdown"):
        asyncio.run(batcher.submit(1, deadline=later(5)))


def test_max_jobs_and_lanes_must_be_positive(pool: ThreadPoolExecutor) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        MicroBatcher(Doubler(), pool, max_jobs=0, lanes=1)
