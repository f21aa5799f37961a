"""@resilient with the real CircuitBreaker: retry outside, breaker inside, fallback last."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from composition_support import FIVE, MakeBreaker

from doubles import Flaky
from resilience_kit import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    RetryStats,
    retry_stats,
)
from resilience_kit.composition import resilient
from resilience_kit.testing import FakeClock


def down(times: int = 100) -> Flaky:
    return Flaky(*(ConnectionError(f"refused #{n}") for n in range(1, times + 1)))


def totals(breaker: CircuitBreaker) -> tuple[int, int, int, int]:
    stats = breaker.stats()
    return stats.total_calls, stats.total_successes, stats.total_failures, stats.total_rejected


def test_each_attempt_is_one_call_the_breaker_counts(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(failure_threshold=10)
    target = down(2)
    fn = resilient(breaker=breaker, retry=FIVE)(target)
    assert fn() == "ok"
    assert target.calls == 3
    assert totals(breaker) == (3, 1, 2, 0)
    assert retry_stats()["composed"] == RetryStats(
        calls=1, attempts=3, retries=2, successes_after_retry=1, exhausted=0
    )


def test_an_open_breaker_stops_the_retries_at_once(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(failure_threshold=2)
    target = down()
    fn = resilient(breaker=breaker, retry=FIVE)(target)
    with pytest.raises(CircuitOpenError) as caught:
        fn()
    # Two failures open it; the third attempt is rejected and never retried.
    assert target.calls == 2
    assert caught.value.breaker == breaker.name
    assert totals(breaker) == (3, 0, 2, 1)
    with pytest.raises(CircuitOpenError):
        fn()
    assert target.calls == 2  # already open: not one call reaches the dependency
    assert totals(breaker) == (4, 0, 2, 2)
    assert retry_stats()["composed"] == RetryStats(
        calls=2, attempts=4, retries=2, successes_after_retry=0, exhausted=0
    )


def test_breaker_opening_in_the_middle_of_the_retries_stops_them(
    make_breaker: MakeBreaker,
) -> None:
    breaker = make_breaker(failure_threshold=3)
    for _ in range(2):  # other callers' failures leave it one failure short of opening
        with pytest.raises(ConnectionError):
            breaker.call(down(1))
    target = down()
    fn = resilient(breaker=breaker, retry=FIVE)(target)
    with pytest.raises(CircuitOpenError):
        fn()
    assert target.calls == 1
    assert retry_stats()["composed"].attempts == 2


def test_an_operator_forcing_it_open_between_attempts_stops_them(
    make_breaker: MakeBreaker,
) -> None:
    breaker = make_breaker(failure_threshold=10)
    calls = 0

    def first_attempt_fails_then_it_is_forced_open() -> str:
        nonlocal calls
        calls += 1
        breaker.force_open()
        raise ConnectionError("refused")

    fn = resilient(breaker=breaker, retry=FIVE)(first_attempt_fails_then_it_is_forced_open)
    with pytest.raises(CircuitOpenError) as caught:
        fn()
    assert calls == 1
    assert caught.value.state == "FORCED_OPEN"


def test_a_failed_trial_reopens_and_stops_the_retries(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(failure_threshold=1, recovery_timeout=30)
    target = down()
    fn = resilient(breaker=breaker, retry=FIVE)(target)
    with pytest.raises(CircuitOpenError):
        fn()
    clock.advance(30)
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError) as caught:
        fn()
    assert target.calls == 2  # one failure, then one failed trial; nothing else got through
    assert caught.value.retry_after == pytest.approx(30)


def test_recovery_closes_the_breaker_through_resilient(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(failure_threshold=2, recovery_timeout=10)
    target = down(2)
    fn = resilient(breaker=breaker, retry=FIVE, fallback=lambda: "fallback")(target)
    assert fn() == "fallback"
    assert fn() == "fallback"
    clock.advance(10)
    assert fn() == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert target.calls == 3


def test_fallback_gets_the_final_error_and_the_call_arguments(make_breaker: MakeBreaker) -> None:
    seen: list[tuple[object, ...]] = []

    def fallback(user_id: int, *, fresh: bool = False, error: BaseException) -> str:
        seen.append((user_id, fresh, error))
        return "cached"

    target = down()
    fn = resilient(breaker=make_breaker(failure_threshold=10), retry=FIVE, fallback=fallback)(
        target
    )
    assert fn(7, fresh=True) == "cached"
    # The final outcome: the fifth attempt's error, not the first one's.
    assert len(seen) == 1
    assert seen[0][:2] == (7, True)
    assert str(seen[0][2]) == "refused #5"


def test_fallback_gets_the_rejection_when_the_breaker_opens(make_breaker: MakeBreaker) -> None:
    errors: list[BaseException] = []

    def fallback(*, error: BaseException) -> str:
        errors.append(error)
        return "busy"

    breaker = make_breaker(failure_threshold=2, recovery_timeout=42)
    fn = resilient(breaker=breaker, retry=FIVE, fallback=fallback)(down())
    assert fn() == "busy"
    [error] = errors
    assert isinstance(error, CircuitOpenError)
    assert (error.breaker, error.retry_after, error.state) == (breaker.name, 42, "OPEN")


def test_fallback_without_an_error_parameter_gets_only_the_arguments(
    make_breaker: MakeBreaker,
) -> None:
    fn = resilient(breaker=make_breaker(failure_threshold=1), retry=FIVE, fallback=lambda x: x * 2)(
        down()
    )
    assert fn(21) == 42


@pytest.mark.parametrize("error", [ValueError("bug"), FileNotFoundError("missing")])
def test_errors_the_breaker_does_not_record_propagate_untouched(
    make_breaker: MakeBreaker, error: Exception
) -> None:
    breaker = make_breaker(failure_on=(OSError,), ignore=(FileNotFoundError,), failure_threshold=1)
    used: list[object] = []
    target = Flaky(*(error for _ in range(5)))
    fn = resilient(breaker=breaker, retry=FIVE, fallback=lambda: used.append(1))(target)
    with pytest.raises(type(error)) as caught:
        fn()
    assert caught.value is error
    assert used == []
    # The policy retries them (retry_on=Exception); the breaker counts none and stays closed.
    assert target.calls == 5
    assert breaker.stats().total_failures == 0
    assert breaker.state is CircuitState.CLOSED


def test_errors_the_policy_does_not_retry_still_reach_the_fallback(
    make_breaker: MakeBreaker,
) -> None:
    breaker = make_breaker(failure_threshold=10)
    target = down()
    policy = FIVE.replace(retry_on=(TimeoutError,))
    fn = resilient(breaker=breaker, retry=policy, fallback=lambda *, error: repr(error))(target)
    assert fn() == "ConnectionError('refused #1')"
    assert target.calls == 1


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_pass_through_uncounted(
    make_breaker: MakeBreaker, interrupt: type[BaseException]
) -> None:
    breaker = make_breaker(failure_threshold=1)
    error = interrupt()
    target = Flaky(error)
    fn = resilient(breaker=breaker, retry=FIVE, fallback=lambda: "never")(target)
    with pytest.raises(interrupt) as caught:
        fn()
    assert caught.value is error
    assert target.calls == 1
    stats = breaker.stats()
    assert (stats.total_failures, stats.total_successes, stats.state) == (0, 0, "CLOSED")
    assert retry_stats()["composed"].retries == 0


def test_a_flagged_result_is_returned_counted_and_not_retried(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(failure_threshold=2, failure_if=lambda result: result is None)
    target = Flaky(result=None)
    fn = resilient(breaker=breaker, retry=FIVE, fallback=lambda: "fallback")(target)
    assert fn() is None
    assert fn() is None  # the second flagged result opens it
    assert fn() == "fallback"
    assert target.calls == 2
    assert retry_stats()["composed"].retries == 0


def test_without_a_breaker_any_exception_reaches_the_fallback() -> None:
    fn = resilient(retry=FIVE.replace(attempts=2), fallback=lambda: "fallback")(
        Flaky(*(RuntimeError() for _ in range(5)))
    )
    assert fn() == "fallback"


def test_a_return_default_policy_answers_before_the_fallback() -> None:
    fn = resilient(retry="best_effort", fallback=lambda: "fallback")(
        Flaky(*(RuntimeError() for _ in range(5)))
    )
    assert fn() is None


def test_without_retry_the_breaker_sees_one_attempt(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(failure_threshold=10)
    fn = resilient(breaker=breaker)(down())
    with pytest.raises(ConnectionError, match="refused #1"):
        fn()
    assert totals(breaker) == (1, 0, 1, 0)


def test_timeout_on_a_plain_def_is_refused_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match="timeout works on async def only") as caught:
        resilient(retry=FIVE, timeout=1.0)(Flaky())
    assert (caught.value.parameter, caught.value.value) == ("timeout", 1.0)


def test_an_async_fallback_for_a_plain_def_is_refused_at_decoration() -> None:
    async def fallback() -> str:
        return "never awaited"

    with pytest.raises(ConfigurationError) as caught:
        resilient(fallback=fallback)(Flaky())
    assert caught.value.parameter == "fallback"


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"fallback": "cached"}, "fallback"),
        ({"retry": "nope"}, "policy_or_preset"),
        ({"breaker": "redis"}, "breaker"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resilient(**options)
    assert caught.value.parameter == parameter


def test_signature_and_metadata_are_kept(make_breaker: MakeBreaker) -> None:
    def fetch(user_id: int, *, fresh: bool = False) -> dict[str, int]:
        """Fetch a user."""
        return {"id": user_id}

    async def afetch(user_id: int) -> int:
        return user_id

    options: dict[str, Any] = {
        "breaker": make_breaker(fallback=lambda *a, **k: None),
        "retry": FIVE,
        "fallback": lambda *a, **k: None,
    }
    wrapped = resilient(**options)(fetch)
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert (wrapped.__name__, wrapped.__doc__) == ("fetch", "Fetch a user.")
    awrapped = resilient(**options, timeout=1)(afetch)
    assert inspect.iscoroutinefunction(awrapped)
    assert inspect.signature(awrapped) == inspect.signature(afetch)


def test_methods_bind(make_breaker: MakeBreaker) -> None:
    guard = make_breaker(failure_threshold=10)

    class Client:
        def __init__(self) -> None:
            self.calls = 0

        @resilient(breaker=guard, retry=FIVE, fallback=lambda self: -1)
        def fetch(self) -> int:
            self.calls += 1
            if self.calls < 2:
                raise OSError("blip")
            return self.calls

    assert Client().fetch() == 2
    assert totals(guard) == (2, 1, 1, 0)


def test_a_threshold_sized_in_requests_opens_on_one_request_under_retries(
    make_breaker: MakeBreaker,
) -> None:
    # docs/composition.md, "Sizing a breaker next to a retry": inside resilient() the breaker
    # counts attempts. failure_threshold=3 under 3 attempts opens on ONE failed request, and the
    # attempt that opens it is the last one.
    three = FIVE.replace(name="sizing", attempts=3)
    naive = make_breaker(failure_threshold=3)
    fn = resilient(breaker=naive, retry=three)(down())
    with pytest.raises(ConnectionError):
        fn()
    assert naive.state is CircuitState.OPEN
    assert totals(naive) == (3, 0, 3, 0)

    # Sized as recommended, N failed requests * attempts: a blip the retry rides out leaves it
    # closed, and the third request failing for good opens it.
    sized = make_breaker(failure_threshold=3 * three.attempts)
    blip = resilient(breaker=sized, retry=three)(down(2))
    assert blip() == "ok"
    outage = resilient(breaker=sized, retry=three)(down())
    for _ in range(2):
        with pytest.raises(ConnectionError):
            outage()
        assert sized.state is CircuitState.CLOSED
    with pytest.raises(ConnectionError):
        outage()
    assert sized.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        outage()
