"""One adapter per circuit breaker library, so every breaker section builds them the same way.

Each adapter builds a breaker with a consecutive-failure threshold and a recovery timeout, and
exposes what the harness needs to verify it: the decorator, the library's "open" error and the
state as a lower-case word. Every library is used through its decorator, as users write it.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import Context, Prepared, Unavailable
from benchmarks.sections._common import (
    KEY_PREFIX,
    RESULT,
    delete_keys,
    expect,
    ours,
    redis_sync,
)


@dataclass
class Built:
    """A breaker ready to wrap a function."""

    decorate: Callable[[Callable[..., Any]], Callable[..., Any]]
    open_error: type[BaseException]
    state: Callable[[], str] | None = None
    close: Callable[[], Any] | None = None
    breaker: Any = None  # resilience_kit's CircuitBreaker, for resilient()


@dataclass(frozen=True)
class Adapter:
    """How to build one library's breaker."""

    label: str
    library: str
    build: Callable[[Context, int, float], Built]
    sync: bool = True
    asynchronous: bool = True


def _ours(ctx: Context, threshold: int, timeout: float) -> Built:
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    open_error = ours("resilience_kit", "CircuitOpenError")
    breaker = circuit_breaker(
        ctx.unique("rk"), failure_threshold=threshold, recovery_timeout=timeout
    )
    return Built(breaker, open_error, lambda: str(breaker.state).lower(), breaker=breaker)


def _ours_rate(ctx: Context, threshold: int, timeout: float) -> Built:
    # The failure-rate policy: open at 50 % failures over a 60 s window once 10 calls are in it
    # (``threshold`` is the consecutive policy's and does not apply).
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    open_error = ours("resilience_kit", "CircuitOpenError")
    breaker = circuit_breaker(
        ctx.unique("rk-rate"),
        failure_rate=0.5,
        window=60.0,
        minimum_calls=10,
        recovery_timeout=timeout,
    )
    return Built(breaker, open_error, lambda: str(breaker.state).lower(), breaker=breaker)


def _ours_redis(ctx: Context, threshold: int, timeout: float) -> Built:
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    open_error = ours("resilience_kit", "CircuitOpenError")
    redis_storage = ours("resilience_kit.breaker.redis_storage", "RedisStorage")
    client = redis_sync(ctx)
    prefix = f"{KEY_PREFIX}-{ctx.unique('rk-storage')}"
    breaker = circuit_breaker(
        ctx.unique("rk"),
        failure_threshold=threshold,
        recovery_timeout=timeout,
        storage=redis_storage(client, prefix=prefix),
    )
    return Built(
        breaker,
        open_error,
        lambda: str(breaker.state).lower(),
        close=lambda: delete_keys(client, f"*{prefix}*"),
    )


def _pybreaker(ctx: Context, threshold: int, timeout: float) -> Built:
    import pybreaker

    breaker = pybreaker.CircuitBreaker(fail_max=threshold, reset_timeout=timeout)
    return Built(breaker, pybreaker.CircuitBreakerError, lambda: str(breaker.current_state))


def _pybreaker_redis(ctx: Context, threshold: int, timeout: float) -> Built:
    import pybreaker

    client = redis_sync(ctx)
    namespace = f"{KEY_PREFIX}-{ctx.unique('pybreaker')}"
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=namespace)
    breaker = pybreaker.CircuitBreaker(
        fail_max=threshold, reset_timeout=timeout, state_storage=storage
    )
    return Built(
        breaker,
        pybreaker.CircuitBreakerError,
        lambda: str(breaker.current_state),
        close=lambda: delete_keys(client, f"*{namespace}*"),
    )


def _circuitbreaker(ctx: Context, threshold: int, timeout: float) -> Built:
    import circuitbreaker

    breaker = circuitbreaker.CircuitBreaker(
        failure_threshold=threshold, recovery_timeout=timeout, name=ctx.unique("cb")
    )
    return Built(breaker, circuitbreaker.CircuitBreakerError, lambda: str(breaker.state))


def _purgatory_sync(ctx: Context, threshold: int, timeout: float) -> Built:
    import purgatory
    from purgatory.domain.model import OpenedState

    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=timeout)
    return Built(factory(ctx.unique("purgatory")), OpenedState)


def _purgatory_async(ctx: Context, threshold: int, timeout: float) -> Built:
    import purgatory
    from purgatory.domain.model import OpenedState

    factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=timeout)
    return Built(factory(ctx.unique("purgatory")), OpenedState)


def _aiobreaker(ctx: Context, threshold: int, timeout: float) -> Built:
    try:
        import aiobreaker
    except Exception as exc:  # it predates Python 3.11 and may not import on newer ones
        raise Unavailable(f"aiobreaker does not import here: {exc!r}") from None

    breaker = aiobreaker.CircuitBreaker(
        fail_max=threshold, timeout_duration=datetime.timedelta(seconds=timeout)
    )

    def state() -> str:
        return str(breaker.current_state.name).lower()

    return Built(breaker, aiobreaker.CircuitBreakerError, state)


def pyresilience_built(ctx: Context, **options: Any) -> Built:
    """pyresilience's ``@resilient`` with the given configs (``circuit_breaker=...`` and more).

    pyresilience makes one breaker per decorated function; the state is read from the executor
    its decorator attaches to the wrapper (``_executor``), only to verify the case.
    """
    import pyresilience

    wrapped: list[Any] = []

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        guarded: Callable[..., Any] = pyresilience.resilient(**options)(fn)
        wrapped.append(guarded)
        return guarded

    def state() -> str:
        return str(wrapped[-1]._executor._circuit_breaker.state.value)

    return Built(decorate, pyresilience.CircuitOpenError, state)


def _pyresilience(ctx: Context, threshold: int, timeout: float, **window: Any) -> Built:
    import pyresilience

    config = pyresilience.CircuitBreakerConfig(
        failure_threshold=threshold, recovery_timeout=timeout, success_threshold=1, **window
    )
    return pyresilience_built(ctx, circuit_breaker=config)


def _pyresilience_window(ctx: Context, threshold: int, timeout: float) -> Built:
    # Its rate policy counts the last N calls (no time window): 50 % of the last 100, judged
    # from 10 calls on.
    return _pyresilience(
        ctx,
        threshold,
        timeout,
        sliding_window_size=100,
        failure_rate_threshold=0.5,
        minimum_calls=10,
    )


OURS = Adapter("resilience_kit", "resilience-kit-py", _ours)
OURS_RATE = Adapter("resilience_kit, failure_rate window", "resilience-kit-py", _ours_rate)
OURS_REDIS = Adapter("resilience_kit + RedisStorage", "resilience-kit-py", _ours_redis)
PYBREAKER = Adapter("pybreaker", "pybreaker", _pybreaker, asynchronous=False)
PYBREAKER_REDIS = Adapter(
    "pybreaker + Redis storage", "pybreaker", _pybreaker_redis, asynchronous=False
)
CIRCUITBREAKER = Adapter("circuitbreaker", "circuitbreaker", _circuitbreaker)
PURGATORY_SYNC = Adapter("purgatory", "purgatory", _purgatory_sync, asynchronous=False)
PURGATORY_ASYNC = Adapter("purgatory", "purgatory", _purgatory_async, sync=False)
AIOBREAKER = Adapter("aiobreaker", "aiobreaker", _aiobreaker, sync=False)
PYRESILIENCE = Adapter("pyresilience", "pyresilience", _pyresilience)
PYRESILIENCE_WINDOW = Adapter(
    "pyresilience, sliding_window_size", "pyresilience", _pyresilience_window
)

ALL = (
    OURS,
    PYBREAKER,
    PYBREAKER_REDIS,
    CIRCUITBREAKER,
    PURGATORY_SYNC,
    PURGATORY_ASYNC,
    AIOBREAKER,
    PYRESILIENCE,
)


def state_check(built: Built, expected: str) -> Callable[[], None] | None:
    """A verification that the breaker is in state ``expected``, where the library tells."""
    state = built.state
    if state is None:
        return None

    def check() -> None:
        actual = state()
        expect(actual == expected, f"the breaker should be {expected}, it is {actual}")

    return check


def closed_case(adapter: Adapter, fn: Callable[..., Any]) -> Callable[[Context], Prepared]:
    """A setup: ``fn`` wrapped by a CLOSED breaker; one call must return ``RESULT``."""

    def setup(ctx: Context) -> Prepared:
        built = adapter.build(ctx, 5, 60.0)
        return Prepared(
            built.decorate(fn),
            returns=RESULT,
            check=state_check(built, "closed"),
            close=built.close,
        )

    return setup


def open_case(adapter: Adapter, fn: Callable[..., Any]) -> Callable[[Context], Prepared]:
    """A setup: a breaker tripped OPEN by one failure of ``fn``; one call must be rejected."""

    def setup(ctx: Context) -> Prepared:
        built = adapter.build(ctx, 1, 3600.0)
        op = built.decorate(fn)
        with contextlib.suppress(Exception):  # the failure, or the trip's own error
            ctx.resolve(op())
        return Prepared(
            op, raises=built.open_error, check=state_check(built, "open"), close=built.close
        )

    return setup
