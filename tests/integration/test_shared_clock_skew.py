"""Machines whose clocks disagree share one OPEN period, timed by the real Redis's clock.

Each "machine" is a process of its own whose system clock reads an hour ahead of or behind
the others (the library's ``SystemClock`` is shifted before anything is made); the ahead one
also steps forward by the whole recovery timeout right after the opening, as a clock
corrected by NTP does. Neither can shorten the OPEN period nor stretch it.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import uuid
from typing import Any

import pytest

RECOVERY = 2.0
HOUR = 3600.0


def machine(url: str, prefix: str, offset: float, orders: Any, reports: Any) -> None:
    """A process whose clocks read ``offset`` seconds off; it runs the parent's orders."""
    from resilience_kit.clock import SystemClock

    real_monotonic, real_wall = time.monotonic, time.time
    shift = [offset]
    SystemClock.monotonic = staticmethod(lambda: real_monotonic() + shift[0])  # type: ignore[method-assign]
    SystemClock.wall = staticmethod(lambda: real_wall() + shift[0])  # type: ignore[method-assign]

    from resilience_kit import CircuitBreaker, CircuitOpenError, RedisStorage

    storage = RedisStorage(url, prefix=prefix)
    breaker = CircuitBreaker("dep", failure_threshold=1, recovery_timeout=RECOVERY, storage=storage)

    def boom() -> None:
        raise ValueError("down")

    while True:
        order = orders.get(timeout=60)
        if order == "stop":
            break
        if order == "jump":  # the clock steps forward by the whole recovery timeout
            shift[0] += RECOVERY
            reports.put(("jumped",))
            continue
        try:
            breaker.call(boom if order == "fail" else lambda: None)
            reports.put(("admitted", str(breaker.state), None))
        except ValueError:
            reports.put(("failed", str(breaker.state), None))
        except CircuitOpenError as error:
            reports.put(("rejected", str(breaker.state), error.retry_after))
    storage.close()


def _ask(orders: Any, reports: Any, order: str) -> tuple[Any, ...]:
    orders.put(order)
    try:
        return tuple(reports.get(timeout=30))
    except queue.Empty:
        pytest.fail(f"a machine did not answer {order!r}")


def test_clock_skew_neither_shortens_nor_stretches_the_open_period(
    redis_url: str, redis_client: Any
) -> None:
    context = multiprocessing.get_context("spawn")
    prefix = f"skew-{uuid.uuid4().hex[:8]}"
    ahead = (context.Queue(), context.Queue())
    behind = (context.Queue(), context.Queue())
    processes = [
        context.Process(target=machine, args=(redis_url, prefix, offset, *queues), daemon=True)
        for offset, queues in ((HOUR, ahead), (-HOUR, behind))
    ]
    for process in processes:
        process.start()
    try:
        assert _ask(*ahead, "ok")[0] == "admitted"  # both read the shared state
        assert _ask(*behind, "ok")[0] == "admitted"
        assert _ask(*ahead, "fail")[:2] == ("failed", "OPEN")
        opened = int(redis_client.hget("{" + prefix + ":breaker:dep}:state", "oa")) / 1e6

        # An hour behind: the opening lasts RECOVERY seconds here too, not an hour more.
        answer = _ask(*behind, "ok")
        assert answer[0] == "rejected"
        assert 0 < answer[2] <= RECOVERY

        # An hour ahead, then a step of the whole timeout: Redis's clock still says OPEN.
        assert _ask(*ahead, "jump") == ("jumped",)
        answer = _ask(*ahead, "ok")
        assert time.time() < opened + RECOVERY - 0.2, "too slow to tell anything"
        assert answer[0] == "rejected", answer
        assert redis_client.hget("{" + prefix + ":breaker:dep}:state", "s") == b"OPEN"

        # Once the server's clock has passed the timeout, the clock an hour behind admits
        # the trial: it did not stretch the period.
        time.sleep(max(0.0, opened + RECOVERY + 0.05 - time.time()))
        assert _ask(*behind, "ok")[:2] == ("admitted", "CLOSED")
    finally:
        for orders, _ in (ahead, behind):
            orders.put("stop")
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
