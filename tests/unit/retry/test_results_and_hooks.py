"""Retrying on a result (retry_if_result), the on_retry hook, and BaseException in retry_on."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import gc
import logging
import sys
import warnings
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from retry_support import Sleeps

from resilience_kit import (
    INTERACTIVE,
    ConfigurationError,
    RetryEvent,
    RetryPolicy,
    RetryStats,
    reset_retry_stats,
    resilient,
    retry,
    retry_stats,
)
from resilience_kit.retry import (
    retry_after_from_response,
    retryable_http_response,
    transient_error,
)
from resilience_kit.testing import FakeClock, use_clock


@dataclasses.dataclass
class Response:
    """An HTTP response as httpx and requests shape it: a status code and headers."""

    status_code: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def returns_in_turn(*results: object) -> Any:
    pending = list(results)
    calls: list[int] = []

    def fn() -> object:
        calls.append(1)
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


ON_STATUS = RetryPolicy(
    name="on-status",
    attempts=3,
    wait="fixed",
    min_wait=1.0,
    retry_on=(ConnectionError,),
    retry_if_result=retryable_http_response,
)


# --- retry_if_result ---------------------------------------------------------------------


def test_a_result_that_qualifies_is_retried_until_a_good_one(sleeps: Sleeps) -> None:
    fn = retry(ON_STATUS, sleep=sleeps.sleep)(
        returns_in_turn(Response(503), Response(429), Response(200))
    )
    assert fn() == Response(200)
    assert sleeps.recorded == [1.0, 1.0]
    assert retry_stats()["on-status"] == RetryStats(
        calls=1, attempts=3, retries=2, successes_after_retry=1, exhausted=0
    )


def test_exhausted_on_results_returns_the_last_result(sleeps: Sleeps) -> None:
    # Whatever on_exhausted says: it is about errors; a result is the call's answer.
    for on_exhausted in ("raise", "return_default"):
        reset_retry_stats()
        policy = ON_STATUS.replace(on_exhausted=on_exhausted, default="default")
        last = Response(503, {"X-Try": "3"})
        fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(Response(503), Response(502), last))
        assert fn() is last
        assert retry_stats()["on-status"] == RetryStats(
            calls=1, attempts=3, retries=2, successes_after_retry=0, exhausted=1
        )


def test_errors_and_results_mix_and_the_last_outcome_decides(sleeps: Sleeps) -> None:
    fn = retry(ON_STATUS, sleep=sleeps.sleep)(
        returns_in_turn(ConnectionError("refused"), Response(503), Response(204))
    )
    assert fn() == Response(204)

    last = ConnectionError("still refused")
    fn = retry(ON_STATUS, sleep=sleeps.sleep)(
        returns_in_turn(Response(503), ConnectionError("refused"), last)
    )
    with pytest.raises(ConnectionError) as caught:
        fn()
    assert caught.value is last

    # A non-retryable error after a retried result propagates at once.
    fn = retry(ON_STATUS, sleep=sleeps.sleep)(returns_in_turn(Response(503), KeyError("k")))
    with pytest.raises(KeyError):
        fn()
    assert len(fn.__wrapped__.calls) == 2


async def test_async_results_are_retried_too(sleeps: Sleeps) -> None:
    pending = [Response(503), Response(200)]

    @retry(ON_STATUS, sleep=sleeps.async_sleep)
    async def fetch() -> Response:
        await asyncio.sleep(0)
        return pending.pop(0)

    assert await fetch() == Response(200)
    assert retry_stats()["on-status"].successes_after_retry == 1

    @retry(ON_STATUS, sleep=sleeps.async_sleep)
    async def always_busy() -> Response:
        return Response(429)

    assert await always_busy() == Response(429)
    assert retry_stats()["on-status"].exhausted == 1


def test_a_retry_after_on_a_returned_response_is_honoured(sleeps: Sleeps) -> None:
    policy = ON_STATUS.replace(max_wait=30.0, retry_after=retry_after_from_response)
    fn = retry(policy, sleep=sleeps.sleep)(
        returns_in_turn(Response(429, {"Retry-After": "7"}), Response(200))
    )
    assert fn() == Response(200)
    assert sleeps.recorded == [7.0]


def test_a_failing_retry_if_result_returns_the_result_and_logs(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(result: object) -> bool:
        raise RuntimeError("predicate bug")

    fn = retry(ON_STATUS.replace(retry_if_result=broken), sleep=sleeps.sleep)(
        returns_in_turn(Response(503))
    )
    with caplog.at_level(logging.ERROR, "resilience_kit.retry"):
        assert fn() == Response(503)
    assert sleeps.recorded == []
    assert "retry_if_result of policy 'on-status' failed with RuntimeError" in caplog.text
    assert "returning the result" in caplog.text


def test_the_log_names_the_results_type_never_its_content(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    fn = retry(ON_STATUS, sleep=sleeps.sleep)(
        returns_in_turn(Response(503, {"Authorization": "Bearer SECRET"}), Response(200))
    )
    with caplog.at_level(logging.WARNING, "resilience_kit.retry"):
        fn()
    assert "attempt 1 of 3 returned a Response that retry_if_result retries" in caplog.text
    assert "SECRET" not in caplog.text
    assert caplog.records[0].result_type == "Response"  # type: ignore[attr-defined]


def test_the_deadline_bounds_result_retries(sleeps: Sleeps) -> None:
    policy = ON_STATUS.replace(attempts=100, deadline=3.5)
    fn = retry(policy, sleep=sleeps.sleep, clock=sleeps.clock)(lambda: Response(503))
    assert fn() == Response(503)
    assert sum(sleeps.recorded) <= 3.5 * 0.99 + 1e-9
    assert retry_stats()["on-status"].exhausted == 1


@given(
    results=st.lists(st.integers(-3, 3), min_size=1, max_size=8),
    attempts=st.integers(1, 6),
)
def test_retry_if_result_returns_the_first_good_result_within_the_attempts(
    results: list[int], attempts: int
) -> None:
    reset_retry_stats()
    policy = RetryPolicy(
        name="property-results",
        attempts=attempts,
        min_wait=0,
        max_wait=0,
        retry_if_result=lambda r: r < 0,
    )
    calls = 0

    def fn() -> int:
        nonlocal calls
        calls += 1
        return results[min(calls, len(results)) - 1]

    outcome = retry(policy, sleep=lambda s: None)(fn)()
    seen = [results[min(n, len(results)) - 1] for n in range(1, attempts + 1)]
    good = next((n for n, r in enumerate(seen, 1) if r >= 0), None)
    expected_calls = attempts if good is None else good
    assert calls == expected_calls
    assert outcome == seen[expected_calls - 1]
    stats = retry_stats()["property-results"]
    assert stats == RetryStats(
        calls=1,
        attempts=expected_calls,
        retries=expected_calls - 1,
        successes_after_retry=int(good is not None and good > 1),
        exhausted=int(good is None),
    )


# --- on_retry ----------------------------------------------------------------------------


def test_on_retry_hears_each_wait_before_it_with_the_outcome(sleeps: Sleeps) -> None:
    steps: list[object] = []

    def on_retry(event: RetryEvent) -> None:
        steps.append(event)

    def sleep(seconds: float) -> None:
        steps.append(("slept", seconds))

    policy = ON_STATUS.replace(on_retry=on_retry, wait="exponential", min_wait=0.5)
    refused = ConnectionError("refused")
    fn = retry(policy, sleep=sleep)(returns_in_turn(refused, Response(503), Response(200)))
    assert fn() == Response(200)
    assert steps == [
        RetryEvent(policy=policy, attempt=1, wait=1.0, error=refused, result=None),
        ("slept", 1.0),
        RetryEvent(policy=policy, attempt=2, wait=2.0, error=None, result=Response(503)),
        ("slept", 2.0),
    ]
    event = steps[0]
    assert isinstance(event, RetryEvent)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.attempt = 5  # type: ignore[misc]


def test_on_retry_is_not_called_without_a_retry(sleeps: Sleeps) -> None:
    events: list[RetryEvent] = []
    policy = ON_STATUS.replace(on_retry=events.append, attempts=2)
    assert retry(policy, sleep=sleeps.sleep)(lambda: Response(200))() == Response(200)
    assert events == []
    # Exhausted: one wait, so one event; none after the last attempt.
    with pytest.raises(ConnectionError):
        retry(policy, sleep=sleeps.sleep)(
            returns_in_turn(ConnectionError("a"), ConnectionError("b"))
        )()
    assert [e.attempt for e in events] == [1]


def test_a_failing_on_retry_never_breaks_the_call(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RetryEvent) -> None:
        raise ValueError("metrics backend down")

    fn = retry(ON_STATUS.replace(on_retry=broken), sleep=sleeps.sleep)(
        returns_in_turn(ConnectionError("refused"), Response(200))
    )
    with caplog.at_level(logging.ERROR, "resilience_kit.retry"):
        assert fn() == Response(200)
    assert sleeps.recorded == [1.0]
    assert "on_retry of policy 'on-status' failed with ValueError" in caplog.text
    assert retry_stats()["on-status"].successes_after_retry == 1


async def test_an_async_on_retry_is_awaited_and_its_failure_logged(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[int] = []

    async def on_retry(event: RetryEvent) -> None:
        await asyncio.sleep(0)
        events.append(event.attempt)
        if event.attempt == 2:
            raise RuntimeError("tracing down")

    pending: list[object] = [ConnectionError("a"), Response(503), "done"]

    @retry(ON_STATUS.replace(on_retry=on_retry), sleep=sleeps.async_sleep)
    async def fetch() -> object:
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    with caplog.at_level(logging.ERROR, "resilience_kit.retry"):
        assert await fetch() == "done"
    assert events == [1, 2]
    assert "on_retry of policy 'on-status' failed with RuntimeError" in caplog.text


def test_a_coroutine_on_retry_is_refused_for_a_plain_def() -> None:
    async def on_retry(event: RetryEvent) -> None: ...

    with pytest.raises(ConfigurationError, match="on_retry must be a plain function") as caught:
        retry(ON_STATUS.replace(on_retry=on_retry))(lambda: None)
    assert caught.value.parameter == "on_retry"


def test_an_awaitable_from_a_plain_hook_of_a_plain_def_is_dropped_cleanly(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    async def later() -> None: ...

    fn = retry(ON_STATUS.replace(on_retry=lambda event: later()), sleep=sleeps.sleep)(
        returns_in_turn(ConnectionError("a"), "ok")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would be one
        with caplog.at_level(logging.ERROR, "resilience_kit.retry"):
            assert fn() == "ok"
        gc.collect()
    assert "returned an awaitable for a plain (sync) function" in caplog.text


# --- retry_on with BaseException -----------------------------------------------------------


class LibraryTimeout(BaseException):
    """A library's own timeout that is not an Exception (some do this on purpose)."""


def test_a_base_exception_in_retry_on_is_retried(sleeps: Sleeps) -> None:
    policy = RetryPolicy(
        name="base", attempts=3, min_wait=0, max_wait=0, retry_on=(LibraryTimeout,)
    )
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(LibraryTimeout(), LibraryTimeout(), 7))
    assert fn() == 7
    last = LibraryTimeout()
    with pytest.raises(LibraryTimeout) as caught:
        retry(policy, sleep=sleeps.sleep)(
            returns_in_turn(LibraryTimeout(), LibraryTimeout(), last)
        )()
    assert caught.value is last


@pytest.mark.parametrize("never", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_retry_on_base_exception_never_retries_interrupts_and_exits(
    sleeps: Sleeps, never: type[BaseException]
) -> None:
    policy = RetryPolicy(
        name="everything", attempts=5, min_wait=0, max_wait=0, retry_on=(BaseException,)
    )
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(never(), "unreached"))
    with pytest.raises(never):
        fn()
    assert len(fn.__wrapped__.calls) == 1
    # Later attempts too: an interrupt during a retry ends it at once.
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(LibraryTimeout(), never(), "unreached"))
    with pytest.raises(never):
        fn()
    assert len(fn.__wrapped__.calls) == 2
    assert retry_stats()["everything"].exhausted == 0


async def test_retry_on_base_exception_never_retries_cancellation(sleeps: Sleeps) -> None:
    policy = RetryPolicy(
        name="everything", attempts=5, min_wait=0, max_wait=0, retry_on=(BaseException,)
    )
    started = asyncio.Event()
    calls = 0

    @retry(policy, sleep=sleeps.async_sleep)
    async def waits() -> None:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(waits())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1

    @retry(policy, sleep=sleeps.async_sleep)
    async def cancelled_by_a_library() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await cancelled_by_a_library()


def test_a_trio_style_cancellation_is_never_retried(sleeps: Sleeps) -> None:
    # Recognised by name: trio need not be installed.
    Cancelled = type("Cancelled", (BaseException,), {"__module__": "trio._core._run"})
    policy = RetryPolicy(
        name="everything", attempts=5, min_wait=0, max_wait=0, retry_on=(BaseException,)
    )
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(Cancelled(), "unreached"))
    with pytest.raises(Cancelled):
        fn()
    assert len(fn.__wrapped__.calls) == 1
    with pytest.raises(ConfigurationError, match="Cancelled, which is never retried"):
        RetryPolicy(retry_on=(Cancelled,))


@pytest.mark.parametrize(
    "never", [asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit]
)
def test_a_group_holding_a_never_retried_error_is_never_retried(
    sleeps: Sleeps, never: type[BaseException]
) -> None:
    # A task group (anyio's, trio's, or one's own) reports a cancellation or an interrupt
    # inside a BaseExceptionGroup: retry_on=(BaseException,) must not retry that either.
    Group: Any = _group_class()
    policy = RetryPolicy(
        name="everything",
        attempts=5,
        min_wait=0,
        max_wait=0,
        retry_on=(BaseException,),
        on_exhausted="return_default",
    )
    nested = Group("outer", [ValueError("x"), Group("inner", [never()])])
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(nested, "unreached"))
    with pytest.raises(Group) as caught:
        fn()
    assert caught.value is nested
    assert len(fn.__wrapped__.calls) == 1
    fn = retry(policy, sleep=sleeps.sleep)(
        returns_in_turn(LibraryTimeout(), Group("g", [never()]), "unreached")
    )
    with pytest.raises(Group):
        fn()
    assert len(fn.__wrapped__.calls) == 2
    # A group of other BaseExceptions is retried as retry_on says.
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(Group("g", [LibraryTimeout()]), "done"))
    assert fn() == "done"


def _group_class() -> type[BaseException]:
    if sys.version_info >= (3, 11):
        return cast("type[BaseException]", builtins.BaseExceptionGroup)
    from exceptiongroup import BaseExceptionGroup  # Python 3.10: pytest's dependency

    return cast("type[BaseException]", BaseExceptionGroup)


@pytest.mark.parametrize(
    "never", [asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit]
)
def test_listing_a_never_retried_class_is_refused(never: type[BaseException]) -> None:
    with pytest.raises(ConfigurationError, match="never retried") as caught:
        RetryPolicy(retry_on=(ValueError, never))
    assert caught.value.parameter == "retry_on"
    assert RetryPolicy(retry_on=(BaseException,)).retry_on == (BaseException,)


def test_plain_exception_policies_still_let_base_exceptions_through(sleeps: Sleeps) -> None:
    policy = RetryPolicy(name="plain", attempts=3, min_wait=0, max_wait=0)
    fn = retry(policy, sleep=sleeps.sleep)(returns_in_turn(LibraryTimeout(), "unreached"))
    with pytest.raises(LibraryTimeout):
        fn()
    assert len(fn.__wrapped__.calls) == 1


# --- the interactive preset ----------------------------------------------------------------


def test_the_interactive_preset_rides_out_a_blip_within_a_few_seconds(sleeps: Sleeps) -> None:
    fn = retry("interactive", sleep=sleeps.sleep, clock=sleeps.clock)(
        returns_in_turn(ConnectionError("blip"), TimeoutError("blip"), "ok")
    )
    assert fn() == "ok"
    assert len(sleeps.recorded) == 2
    assert all(0.1 <= wait <= 0.5 for wait in sleeps.recorded)
    # An outage fails fast: never more than the deadline, however slow each attempt.
    slow_failures = 0

    def down() -> None:
        nonlocal slow_failures
        slow_failures += 1
        sleeps.clock.advance(1.5)  # each attempt takes 1.5 s
        raise ConnectionError("down")

    start = sleeps.clock.monotonic()
    with pytest.raises(ConnectionError):
        retry(INTERACTIVE, sleep=sleeps.sleep, clock=sleeps.clock)(down)()
    assert sleeps.clock.monotonic() - start <= INTERACTIVE.deadline + 1.5  # type: ignore[operator]
    assert slow_failures == 2


@pytest.mark.parametrize("retry_after", [None, 0.4])
async def test_interactive_with_a_timeout_gives_up_within_its_deadline(
    retry_after: float | None,
) -> None:
    # The docs' recipe, resilient(retry=INTERACTIVE, timeout=1.0), against a dependency that
    # hangs: "gives up on an outage within 3 s in all". Every attempt times out at 1 s; the
    # last one may only use what is left of the deadline (it took the full second, ending
    # at 3.5 s).
    clock = FakeClock()
    calls = 0
    policy = INTERACTIVE.replace(retry_after=lambda outcome, now: retry_after)

    with use_clock(clock):

        @resilient(retry=policy, timeout=1.0)
        async def hangs() -> str:
            nonlocal calls
            calls += 1
            await clock.async_sleep(60)
            return "never"

        with pytest.raises(TimeoutError):
            await hangs()
        assert calls == 3
        assert clock.monotonic() <= INTERACTIVE.deadline  # type: ignore[operator]

        # A call that does not hang keeps the whole per-attempt timeout.
        @resilient(retry=INTERACTIVE, timeout=1.0)
        async def slow_but_in_time() -> str:
            await clock.async_sleep(0.9)
            return "ok"

        assert await slow_but_in_time() == "ok"


def test_transient_error_is_any_presets_rule() -> None:
    assert transient_error(ConnectionError())
    assert transient_error(TimeoutError())
    assert not transient_error(ValueError())
    assert not transient_error(KeyError())
    assert retryable_http_response(Response(503))
    assert retryable_http_response(Response(429))
    assert not retryable_http_response(Response(501))
    assert not retryable_http_response(Response(200))
    assert not retryable_http_response(object())
