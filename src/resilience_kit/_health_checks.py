"""The ready-made health checks (public through ``resilience_kit.health``).

Each returns a check: a sync callable for a blocking client (the checker runs it in a thread of
its own) or an async one for an asyncio client, decided once here, not on every probe.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resilience_kit._callables import is_async_callable
from resilience_kit._validation import check_callable as _require_callable

if TYPE_CHECKING:
    from resilience_kit.breaker import CircuitBreaker
    from resilience_kit.health import CheckResult

__all__ = ["check_breaker", "check_callable", "check_redis", "check_sqlalchemy"]


def _result(status: str, message: str = "", details: dict[str, Any] | None = None) -> CheckResult:
    from resilience_kit.health import CheckResult, HealthStatus

    return CheckResult(HealthStatus(status), message, details=details or {})


def _pool_details(pool: Any) -> dict[str, Any]:
    """What a SQLAlchemy pool says about itself (a QueuePool has all four; others fewer);
    ``overflow`` is the number of overflow connections open (0 or more)."""
    details: dict[str, Any] = {"pool": type(pool).__name__}
    for figure in ("size", "checkedin", "checkedout", "overflow"):
        method = getattr(pool, figure, None)
        if callable(method):
            try:
                details[figure] = int(method())
            except Exception:  # noqa: S112 - a pool that cannot say simply says less
                continue
    if "overflow" in details:
        # QueuePool counts overflow from -pool_size up; below 0 no overflow connection is open.
        details["overflow"] = max(0, details["overflow"])
    return details


def check_sqlalchemy(engine: Any, *, query: str = "SELECT 1") -> Callable[[], Any]:
    """A check that runs ``query`` on a connection of ``engine`` (an `Engine` or an `AsyncEngine`).

    Healthy when the statement runs; the details show the pool (class, size, connections
    checked in and out, overflow). With an `AsyncEngine` the check is async; with an `Engine`
    it runs in a thread, so give the engine a connect timeout shorter than the check's.
    """
    import sqlalchemy as sa

    statement = sa.text(query)
    if hasattr(engine, "sync_engine"):  # an AsyncEngine

        async def check_async_engine() -> CheckResult:
            async with engine.connect() as connection:
                await connection.execute(statement)
            return _result("healthy", details=_pool_details(engine.sync_engine.pool))

        return check_async_engine

    def check_engine() -> CheckResult:
        with engine.connect() as connection:
            connection.execute(statement)
        return _result("healthy", details=_pool_details(engine.pool))

    return check_engine


def _is_async_redis(client: Any) -> bool:
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - the redis extra provides both
        return False
    async_types: tuple[type, ...] = (redis.asyncio.Redis,)
    cluster = getattr(redis.asyncio, "RedisCluster", None)
    if isinstance(cluster, type):
        async_types += (cluster,)
    return isinstance(client, async_types)


def check_redis(client: Any) -> Callable[[], Any]:
    """A check that sends ``PING`` through ``client`` (`redis.Redis`, `redis.asyncio.Redis` or
    a cluster client of either kind).

    The client is used as you configured it: give it a socket timeout shorter than the check's
    timeout, or the checker's timeout ends the wait (the connection then stays busy until the
    socket gives up).
    """
    if _is_async_redis(client):

        async def check_async_redis() -> bool:
            return bool(await client.ping())

        return check_async_redis

    def check_sync_redis() -> bool:
        return bool(client.ping())

    return check_sync_redis


def check_breaker(breaker: CircuitBreaker) -> Callable[[], Any]:
    """A check that reports ``breaker``'s state without calling anything.

    CLOSED and DISABLED are healthy, HALF_OPEN is degraded (trial calls are probing the
    dependency), OPEN and FORCED_OPEN are unhealthy. The details hold the state, the failure
    count, ``retry_after`` and the totals.
    """
    from resilience_kit.breaker import CircuitState

    verdicts = {
        CircuitState.CLOSED: "healthy",
        CircuitState.DISABLED: "healthy",
        CircuitState.HALF_OPEN: "degraded",
        CircuitState.OPEN: "unhealthy",
        CircuitState.FORCED_OPEN: "unhealthy",
    }

    async def check_circuit() -> CheckResult:
        stats = breaker.stats()
        state = str(stats.state)
        details = {
            "state": state,
            "failure_count": stats.failure_count,
            "retry_after": round(stats.retry_after, 3),
            "total_calls": stats.total_calls,
            "total_failures": stats.total_failures,
            "total_rejected": stats.total_rejected,
        }
        verdict = verdicts[stats.state]
        message = "" if verdict == "healthy" else f"circuit {breaker.name!r} is {state}"
        return _result(verdict, message, details)

    return check_circuit


def check_callable(fn: Callable[[], Any]) -> Callable[[], Any]:
    """A check that calls ``fn`` (sync or async, no arguments): healthy when it returns a
    truthy value, unhealthy when it returns a falsy one or raises."""
    _require_callable("fn", fn)
    if is_async_callable(fn):

        async def check_async_callable() -> bool:
            return bool(await fn())

        return check_async_callable

    def check_sync_callable() -> Any:
        result = fn()
        # A plain function (a lambda) that returns a coroutine: the checker awaits it.
        return result if inspect.isawaitable(result) else bool(result)

    return check_sync_callable
