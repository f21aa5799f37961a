"""The equivalence model of the Redis-backed breaker and the in-process one, for the unit test
(fakeredis) and the integration test (the real Redis): see `run_program()`.

One process, one thread: random configurations and random programs of successful, failing,
ignored and held-open calls, clock steps and manual controls run against an in-process breaker
and a Redis-backed one (timed by the same fake clock, successes sent at once). Whether each
call ran, the state, ``retry_after`` and (consecutive policy) the failure count must agree
after every step.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from hypothesis import strategies as st

from resilience_kit import CircuitBreaker, CircuitOpenError, RedisStorage
from resilience_kit.testing import FakeClock

_names = itertools.count()


class Ignored(Exception):
    pass


configs = st.fixed_dictionaries(
    {
        "failure_threshold": st.integers(1, 4),
        "recovery_timeout": st.sampled_from([1.0, 2.0, 5.0]),
        "max_recovery_timeout": st.sampled_from([None, 8.0]),
        "half_open_max_calls": st.integers(1, 2),
        "success_threshold": st.integers(1, 3),
        # Windows whose buckets (window / 20) are exact binary fractions, like the steps.
        "failure_rate": st.sampled_from([None, None, 0.5, 0.25, 1.0]),
        "window": st.sampled_from([10.0, 20.0]),
        "minimum_calls": st.integers(1, 5),
    }
)
steps = st.lists(
    st.one_of(
        st.sampled_from(["ok", "fail", "ignored", "hold", "finish", "reset", "force_open"]),
        st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0]),
    ),
    max_size=60,
)


def _run(breaker: CircuitBreaker, outcome: str) -> bool:
    """One call through ``breaker``; whether it ran."""
    ran = []

    def call() -> None:
        ran.append(1)
        if outcome == "fail":
            raise ValueError("down")
        if outcome == "ignored":
            raise Ignored

    with contextlib.suppress(ValueError, Ignored, CircuitOpenError):
        breaker.call(call)
    return bool(ran)


def run_program(client: Any, prefix: str, config: dict[str, Any], program: list[Any]) -> None:
    """Run ``program`` against both breakers, ``client`` holding the shared one's state."""
    clock = FakeClock()
    storage = RedisStorage(client, clock=clock, flush_interval=0, prefix=prefix)
    name = f"eq{next(_names)}"
    memory = CircuitBreaker(name, clock=clock, ignore=(Ignored,), **config)
    memory.unregister()
    shared = CircuitBreaker(name, clock=clock, ignore=(Ignored,), storage=storage, **config)
    shared.unregister()
    storage.close()  # single process: nothing to hear, and no thread per example
    held: list[tuple[Any, Any]] = []
    try:
        for step in program:
            if isinstance(step, float):
                clock.advance(step)
            elif step in ("reset", "force_open"):
                getattr(memory, step)()
                getattr(shared, step)()
            elif step == "hold":  # a call admitted now whose outcome comes later
                if not held:
                    entered = []
                    for breaker in (memory, shared):
                        try:
                            breaker.__enter__()
                            entered.append(breaker)
                        except CircuitOpenError:
                            entered.append(None)
                    assert (entered[0] is None) == (entered[1] is None), step
                    if entered[0] is not None:
                        held.append((memory, shared))
            elif step == "finish":
                for pair in held:
                    for breaker in pair:
                        breaker.__exit__(ValueError, ValueError("late"), None)
                held.clear()
            else:
                assert _run(memory, step) == _run(shared, step), step
            assert shared.state is memory.state, step
            mine, theirs = shared.stats(), memory.stats()
            if config["failure_rate"] is None:
                # (The rate window's figures are the fleet's as of the last answer from
                # Redis, not aged bucket by bucket locally: only decisions are compared.)
                assert mine.failure_count == theirs.failure_count, step
            assert mine.retry_after == pytest.approx(theirs.retry_after), step
    finally:
        for pair in held:
            for breaker in pair:
                breaker.__exit__(None, None, None)
