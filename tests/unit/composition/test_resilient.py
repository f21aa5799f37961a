"""@resilient: retry outside, breaker inside, timeout per attempt, fallback on the final outcome.

The real CircuitBreaker is on another branch while this is written; ``CountingBreaker`` is the
smallest stand-in with its call forms (``call``/``call_async``, consecutive failures open it,
``failure_on``/``ignore``). Replace it with ``CircuitBreaker`` once both are merged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from resilience_kit import (
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    RetryPolicy,
    reset_retry_stats,
    retry_stats,
)
from resilience_kit.composition import resilient
from resilience_kit.testing import no_waits

R = TypeVar("R")


class CountingBreaker:
    def __init__(
        self,
        threshold: int = 3,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        ignore: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.threshold = threshold
        self.failure_on = failure_on
        self.ignore = ignore
        self.failures = 0
        self.calls = 0
        self.rejected = 0

    def _admit(self) -> None:
        if self.failures >= self.threshold:
            self.rejected += 1
            raise CircuitOpenError("fake", 30.0, CircuitState.OPEN)
        self.calls += 1

    def _record(self, error: BaseException) -> None:
        if isinstance(error, self.failure_on) and not isinstance(error, self.ignore):
            self.failures += 1

    def call(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        self._admit()
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            self._record(error)
            raise

    async def call_async(self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        self._admit()
        try:
            return await fn(*args, **kwargs)
        except Exception as error:
            self._record(error)
            raise


FIVE = RetryPolicy(name="composed", attempts=5, min_wait=0.0, max_wait=0.0)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    reset_retry_stats()
    with no_waits():
        yield


def failing(times: int, error: Exception, result: object = "ok") -> Callable[..., object]:
    state = {"n": 0}

    def fn(*args: object, **kwargs: object) -> object:
        state["n"] += 1
        if state["n"] <= times:
            raise error
        return result

    fn.calls = state  # type: ignore[attr-defined]
    return fn


def test_each_attempt_goes_through_the_breaker() -> None:
    breaker = CountingBreaker(threshold=10)
    fn = resilient(breaker=breaker, retry=FIVE)(failing(2, OSError("blip")))
    assert fn() == "ok"
    assert (breaker.calls, breaker.failures) == (3, 2)
    assert retry_stats()["composed"].successes_after_retry == 1


def test_an_open_breaker_stops_the_retries_at_once() -> None:
    breaker = CountingBreaker(threshold=2)
    target = failing(10, OSError("down"))
    fn = resilient(breaker=breaker, retry=FIVE)(target)
    with pytest.raises(CircuitOpenError):
        fn()
    # Two failures open it; the third attempt is rejected and not retried.
    assert target.calls["n"] == 2  # type: ignore[attr-defined]
    assert breaker.rejected == 1
    stats = retry_stats()["composed"]
    assert (stats.attempts, stats.exhausted) == (3, 0)


def test_fallback_gets_the_final_error_when_it_declares_one() -> None:
    seen: list[tuple[object, ...]] = []

    def fallback(user_id: int, *, error: BaseException) -> str:
        seen.append((user_id, error))
        return "cached"

    error = OSError("down")
    fn = resilient(breaker=CountingBreaker(threshold=10), retry=FIVE, fallback=fallback)(
        failing(10, error)
    )
    assert fn(7) == "cached"
    assert seen == [(7, error)]


def test_fallback_without_error_parameter_gets_only_the_arguments() -> None:
    fn = resilient(breaker=CountingBreaker(threshold=1), retry=FIVE, fallback=lambda x: x * 2)(
        failing(10, OSError())
    )
    assert fn(21) == 42


def test_errors_the_breaker_does_not_record_skip_the_fallback() -> None:
    breaker = CountingBreaker(failure_on=(OSError,), ignore=(FileNotFoundError,))
    policy = FIVE.replace(retry_on=(OSError,))
    used: list[object] = []
    decorate = resilient(breaker=breaker, retry=policy, fallback=lambda: used.append(1))
    with pytest.raises(ValueError, match="bug"):
        decorate(failing(1, ValueError("bug")))()
    with pytest.raises(FileNotFoundError):
        decorate(failing(10, FileNotFoundError("missing")))()
    assert used == []


def test_base_exceptions_skip_the_fallback() -> None:
    fn = resilient(retry=FIVE, fallback=lambda: "never")(failing(1, KeyboardInterrupt()))  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        fn()


def test_without_a_breaker_any_exception_reaches_the_fallback() -> None:
    fn = resilient(retry=FIVE.replace(attempts=2), fallback=lambda: "fallback")(
        failing(5, RuntimeError())
    )
    assert fn() == "fallback"


def test_a_return_default_policy_answers_before_the_fallback() -> None:
    fn = resilient(retry="best_effort", fallback=lambda: "fallback")(failing(5, RuntimeError()))
    assert fn() is None


async def test_timeout_bounds_each_attempt_and_counts_as_a_failure() -> None:
    breaker = CountingBreaker(threshold=10)
    attempts = 0

    async def slow_then_fast() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(10)
        return "fast"

    fn = resilient(breaker=breaker, retry=FIVE, timeout=0.05)(slow_then_fast)
    assert await asyncio.wait_for(fn(), 5) == "fast"
    assert (attempts, breaker.failures) == (2, 1)


async def test_async_open_breaker_and_async_fallback() -> None:
    breaker = CountingBreaker(threshold=1)

    async def down() -> str:
        raise ConnectionError("refused")

    async def fallback(*, error: BaseException) -> str:
        return f"fallback after {type(error).__name__}"

    fn = resilient(breaker=breaker, retry=FIVE, fallback=fallback)(down)
    assert await fn() == "fallback after CircuitOpenError"
    assert (breaker.calls, breaker.rejected) == (1, 1)


def test_timeout_on_a_plain_def_is_refused_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match="timeout works on async def only") as caught:
        resilient(retry=FIVE, timeout=1.0)(failing(0, OSError()))
    assert caught.value.parameter == "timeout"


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"timeout": 0}, "timeout"),
        ({"fallback": "cached"}, "fallback"),
        ({"retry": "nope"}, "policy_or_preset"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resilient(**options)
    assert caught.value.parameter == parameter


def test_methods_bind_and_metadata_is_kept() -> None:
    class Client:
        def __init__(self) -> None:
            self.calls = 0

        @resilient(breaker=CountingBreaker(threshold=10), retry=FIVE, fallback=lambda self: -1)
        def fetch(self) -> int:
            """Fetch a number."""
            self.calls += 1
            if self.calls < 2:
                raise OSError("blip")
            return self.calls

    client = Client()
    assert client.fetch() == 2
    assert Client.fetch.__doc__ == "Fetch a number."
    assert Client.fetch.__name__ == "fetch"
