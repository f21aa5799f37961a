"""A breaker with a fallback of its own inside @resilient.

The breaker's fallback never answers a single attempt (that would hide the failure from the
retries); it answers the final outcome when @resilient has no fallback, and @resilient's own
fallback wins when both are set.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from composition_support import FIVE, MakeBreaker

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, retry_stats
from resilience_kit.clock import SYSTEM_CLOCK
from resilience_kit.composition import resilient
from resilience_kit.testing import FakeClock


class Recorder:
    """A fallback that records what it was given."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.seen: list[tuple[tuple[object, ...], BaseException]] = []

    def __call__(self, *args: object, error: BaseException, **kwargs: object) -> str:
        self.seen.append((args + tuple(kwargs.values()), error))
        return self.answer


def failing(times: int) -> Callable[[str], str]:
    calls = {"n": 0}

    def fn(key: str) -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ConnectionError(f"refused #{calls['n']}")
        return f"value of {key}"

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def test_the_breakers_fallback_does_not_answer_single_attempts(make_breaker: MakeBreaker) -> None:
    own = Recorder("breaker's answer")
    breaker = make_breaker(failure_threshold=10, fallback=own)
    fn = resilient(breaker=breaker, retry=FIVE)(failing(2))
    assert fn("k") == "value of k"
    assert own.seen == []
    assert breaker.stats().total_failures == 2
    assert retry_stats()["composed"].successes_after_retry == 1


def test_the_breakers_fallback_answers_the_final_outcome(make_breaker: MakeBreaker) -> None:
    own = Recorder("breaker's answer")
    breaker = make_breaker(failure_threshold=10, fallback=own)
    fn = resilient(breaker=breaker, retry=FIVE)(failing(100))
    assert fn("k") == "breaker's answer"
    [(args, error)] = own.seen
    assert args == ("k",)
    assert str(error) == "refused #5"
    assert breaker.stats().total_failures == 5


def test_the_breakers_fallback_answers_a_rejection_without_retries(
    make_breaker: MakeBreaker,
) -> None:
    own = Recorder("breaker's answer")
    breaker = make_breaker(failure_threshold=2, fallback=own)
    target = failing(100)
    fn = resilient(breaker=breaker, retry=FIVE)(target)
    assert fn("k") == "breaker's answer"
    assert fn("k") == "breaker's answer"
    assert target.calls["n"] == 2  # type: ignore[attr-defined]
    assert [type(error) for _, error in own.seen] == [CircuitOpenError, CircuitOpenError]
    assert breaker.stats().total_rejected == 2


def test_resilients_fallback_wins_over_the_breakers(make_breaker: MakeBreaker) -> None:
    own = Recorder("breaker's answer")
    mine = Recorder("resilient's answer")
    breaker = make_breaker(failure_threshold=3, fallback=own)
    target = failing(100)
    fn = resilient(breaker=breaker, retry=FIVE, fallback=mine)(target)
    assert fn("a") == "resilient's answer"  # three failures open it, the fourth is rejected
    assert fn("b") == "resilient's answer"
    assert own.seen == []
    assert [(args, type(error)) for args, error in mine.seen] == [
        (("a",), CircuitOpenError),
        (("b",), CircuitOpenError),
    ]
    assert target.calls["n"] == 3  # type: ignore[attr-defined]


def test_direct_uses_of_the_breaker_keep_its_fallback(make_breaker: MakeBreaker) -> None:
    own = Recorder("breaker's answer")
    breaker = make_breaker(failure_threshold=10, fallback=own)
    resilient(breaker=breaker, retry=FIVE, fallback=Recorder("resilient's answer"))(failing(0))
    assert breaker(failing(1))("k") == "breaker's answer"
    assert breaker.call(failing(1), "k") == "breaker's answer"
    assert len(own.seen) == 2


def test_errors_the_breaker_ignores_reach_neither_fallback(make_breaker: MakeBreaker) -> None:
    own = Recorder("breaker's answer")
    breaker = make_breaker(failure_on=(ConnectionError,), fallback=own)
    error = LookupError("no such key")

    def missing(key: str) -> str:
        raise error

    fn = resilient(breaker=breaker, retry=FIVE.replace(retry_on=(ConnectionError,)))(missing)
    with pytest.raises(LookupError) as caught:
        fn("k")
    assert caught.value is error
    assert own.seen == []


def test_a_plain_breaker_fallback_without_error_gets_the_arguments(
    make_breaker: MakeBreaker,
) -> None:
    breaker = make_breaker(failure_threshold=1, fallback=lambda key: f"default for {key}")
    fn = resilient(breaker=breaker, retry=FIVE)(failing(100))
    assert fn("k") == "default for k"
    assert breaker.state is CircuitState.OPEN


async def test_async_the_breakers_async_fallback_answers_the_final_outcome(
    make_breaker: MakeBreaker,
) -> None:
    seen: list[BaseException] = []

    async def own(key: str, *, error: BaseException) -> str:
        seen.append(error)
        return f"stale {key}"

    breaker = make_breaker(failure_threshold=3, fallback=own)
    calls = 0

    async def fetch(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError(f"refused #{calls}")
        return f"fresh {key}"

    fn = resilient(breaker=breaker, retry=FIVE)(fetch)
    assert await fn("k") == "fresh k"  # retried past two failures: the fallback kept out
    assert seen == []
    calls = -10
    assert await fn("k") == "stale k"  # three more failures open it; the fourth is rejected
    assert [type(error) for error in seen] == [CircuitOpenError]
    assert calls == -7


@pytest.mark.parametrize("breaker_fallback", [False, True], ids=["no-fallback", "fallback"])
@pytest.mark.parametrize("kind", ["def", "async def"])
async def test_a_clock_switched_later_times_every_attempt(
    make_breaker: MakeBreaker, breaker_fallback: bool, kind: str
) -> None:
    # The fake_clock fixture switches breakers that already exist (decorated at import time)
    # with _use_clock: the attempt of a breaker with its own fallback must follow the switch,
    # or it measures from the system clock to the fake one and never sees a slow call.
    durations: list[float] = []
    breaker = make_breaker(
        clock=SYSTEM_CLOCK,
        slow_call_threshold=1.0,
        failure_threshold=1,
        fallback=(lambda: "breaker fallback") if breaker_fallback else None,
        listeners=[_Durations(durations)],
    )
    fake = FakeClock(start=100.0)

    def slow() -> str:
        fake.advance(5)
        return "slow answer"

    async def slow_async() -> str:
        return slow()

    decorate = resilient(breaker=breaker)
    guarded, guarded_async = decorate(slow), decorate(slow_async)  # before the switch
    previous = breaker._use_clock(fake)
    try:
        if kind == "def":
            assert guarded() == "slow answer"
        else:
            assert await guarded_async() == "slow answer"
    finally:
        breaker._use_clock(previous)
    assert durations == [5.0]
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes, stats.state) == (1, 0, CircuitState.OPEN)


class _Durations:
    def __init__(self, durations: list[float]) -> None:
        self.durations = durations

    def on_success(self, breaker: CircuitBreaker, duration: float) -> None:
        self.durations.append(duration)

    def on_failure(self, breaker: CircuitBreaker, error: BaseException, duration: float) -> None:
        self.durations.append(duration)
