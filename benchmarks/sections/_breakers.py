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


OURS = Adapter("resilience_kit", "resilience-kit-py", _ours)
OURS_REDIS = Adapter("resilience_kit + RedisStorage", "resilience-kit-py", _ours_redis)
PYBREAKER = Adapter("pybreaker", "pybreaker", _pybreaker, asynchronous=False)
PYBREAKER_REDIS = Adapter(
    "pybreaker + Redis storage", "pybreaker", _pybreaker_redis, asynchronous=False
)
CIRCUITBREAKER = Adapter("circuitbreaker", "circuitbreaker", _circuitbreaker)
PURGATORY_SYNC = Adapter("purgatory", "purgatory", _purgatory_sync, asynchronous=False)
PURGATORY_ASYNC = Adapter("purgatory", "purgatory", _purgatory_async, sync=False)
AIOBREAKER = Adapter("aiobreaker", "aiobreaker", _aiobreaker, sync=False)

ALL = (
    OURS,
    PYBREAKER,
    PYBREAKER_REDIS,
    CIRCUITBREAKER,
    PURGATORY_SYNC,
    PURGATORY_ASYNC,
    AIOBREAKER,
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
