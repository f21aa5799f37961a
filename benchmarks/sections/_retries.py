"""One adapter per retry library: a decorator for ``attempts`` attempts, waits zeroed or not.

Each library is configured to the same policy: retry on ``ValueError``, at most ``attempts``
attempts, re-raise the last error when exhausted. ``zero_waits`` sets every wait to 0 (the
failure-path section); otherwise the waits are exponential as each library's users write them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import Context
from benchmarks.sections._common import expect, ours

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass
class BuiltRetry:
    """A decorator and, where the library counts them, the attempts of the last call."""

    decorate: Decorator
    last_attempts: Callable[[Callable[..., Any]], int] | None = None
    reset: Callable[[], None] | None = None
    policy: Any = None  # resilience_kit's RetryPolicy, for resilient()


@dataclass(frozen=True)
class RetryAdapter:
    """How to build one library's retry decorator."""

    label: str
    library: str
    build: Callable[[Context, int, bool], BuiltRetry]


def _ours(ctx: Context, attempts: int, zero_waits: bool, **options: Any) -> BuiltRetry:
    retry = ours("resilience_kit.retry", "retry")
    policy_type = ours("resilience_kit.retry", "RetryPolicy")
    retry_stats = ours("resilience_kit.retry", "retry_stats")
    name = ctx.unique("retry")
    waits: dict[str, Any] = (
        {"wait": "fixed", "min_wait": 0.0, "max_wait": 0.0}
        if zero_waits
        else {"wait": "exponential", "min_wait": 0.5, "max_wait": 10.0}
    )
    policy = policy_type(attempts=attempts, retry_on=(ValueError,), name=name, **waits, **options)
    seen = {"calls": 0, "attempts": 0}

    def reset() -> None:
        stats = retry_stats().get(name)
        seen.update(calls=stats.calls if stats else 0, attempts=stats.attempts if stats else 0)

    def last_attempts(_: Callable[..., Any]) -> int:
        # retry_stats() is cumulative: the last call's attempts are the growth since reset().
        stats = retry_stats()[name]
        calls = stats.calls - seen["calls"]
        expect(calls == 1, f"retry_stats counted {calls} calls for one call")
        return int(stats.attempts - seen["attempts"])

    return BuiltRetry(retry(policy), last_attempts, reset, policy)


def _tenacity(ctx: Context, attempts: int, zero_waits: bool) -> BuiltRetry:
    import tenacity

    wait = (
        tenacity.wait_none()
        if zero_waits
        else tenacity.wait_exponential(multiplier=1, min=0.5, max=10)
    )
    decorate = tenacity.retry(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(ValueError),
        reraise=True,
    )
    return BuiltRetry(decorate, lambda fn: int(fn.statistics["attempt_number"]))  # type: ignore[attr-defined]


def _stamina(ctx: Context, attempts: int, zero_waits: bool) -> BuiltRetry:
    import stamina

    waits = {"wait_initial": 0.0, "wait_max": 0.0, "wait_jitter": 0.0} if zero_waits else {}
    return BuiltRetry(stamina.retry(on=ValueError, attempts=attempts, **waits))


def _backoff(ctx: Context, attempts: int, zero_waits: bool) -> BuiltRetry:
    import backoff

    if zero_waits:
        decorate = backoff.on_exception(
            backoff.constant, ValueError, max_tries=attempts, interval=0, jitter=None
        )
    else:
        decorate = backoff.on_exception(backoff.expo, ValueError, max_tries=attempts)
    return BuiltRetry(decorate)


def pyresilience_retry(attempts: int, zero_waits: bool) -> Any:
    """pyresilience's ``RetryConfig`` for the common policy."""
    import pyresilience

    waits: dict[str, Any] = (
        {"delay": 0.0, "jitter": False}
        if zero_waits
        else {"delay": 0.5, "backoff_factor": 2.0, "max_delay": 10.0}
    )
    return pyresilience.RetryConfig(max_attempts=attempts, retry_on=(ValueError,), **waits)


def _pyresilience(ctx: Context, attempts: int, zero_waits: bool) -> BuiltRetry:
    import pyresilience

    return BuiltRetry(pyresilience.resilient(retry=pyresilience_retry(attempts, zero_waits)))


def _ours_quiet(ctx: Context, attempts: int, zero_waits: bool) -> BuiltRetry:
    # Below the root logger's WARNING level: the retry's log record is never built.
    return _ours(ctx, attempts, zero_waits, log_level=logging.DEBUG)


OURS = RetryAdapter("resilience_kit", "resilience-kit-py", _ours)
OURS_QUIET = RetryAdapter("resilience_kit, log_level=DEBUG", "resilience-kit-py", _ours_quiet)
TENACITY = RetryAdapter("tenacity", "tenacity", _tenacity)
STAMINA = RetryAdapter("stamina", "stamina", _stamina)
BACKOFF = RetryAdapter("backoff", "backoff", _backoff)
PYRESILIENCE = RetryAdapter("pyresilience", "pyresilience", _pyresilience)

ALL = (OURS, TENACITY, STAMINA, BACKOFF, PYRESILIENCE)
