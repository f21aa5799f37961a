"""testing.no_waits(): retries skip their sleeps in every thread and task while it is active."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from doubles import AsyncFlaky, Flaky
from resilience_kit import RetryPolicy, retry, retry_stats
from resilience_kit.testing import no_waits

LONG = RetryPolicy(
    name="long", attempts=3, wait="fixed", min_wait=30.0, max_wait=30.0, retry_on=(OSError,)
)


def test_sleeps_are_skipped_but_attempts_and_stats_are_kept() -> None:
    recorded: list[float] = []
    flaky = Flaky(OSError(), OSError(), result="done")
    fn = retry(LONG, sleep=recorded.append)(flaky)
    with no_waits():
        assert fn() == "done"
    assert recorded == []
    assert flaky.calls == 3
    assert retry_stats()["long"].retries == 2


def test_waits_resume_after_the_block() -> None:
    recorded: list[float] = []
    fn = retry(LONG, sleep=recorded.append)(Flaky(*[OSError("down")] * 3, result=1))
    with no_waits():
        pass
    with pytest.raises(OSError, match="down"):
        fn()
    assert recorded == [30.0, 30.0]


def test_it_covers_other_threads_and_nests() -> None:
    outcome: list[object] = []

    def in_thread() -> None:
        # Real time.sleep with 30 s waits: only no_waits lets this finish quickly.
        outcome.append(retry(LONG)(Flaky(OSError(), result="thread"))())

    with no_waits():
        with no_waits():
            pass
        started = time.monotonic()
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join(timeout=10)
    assert outcome == ["thread"]
    assert time.monotonic() - started < 10


async def test_it_covers_tasks() -> None:
    async def one() -> object:
        return await retry(LONG)(AsyncFlaky(OSError(), OSError(), result="task").run)()

    with no_waits():
        results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(100))), 10)
    assert results == ["task"] * 100
