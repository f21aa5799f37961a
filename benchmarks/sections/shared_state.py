"""Shared-state breakers: a breaker whose state lives in Redis, shared by every process."""

from __future__ import annotations

import contextlib
from typing import Any

from benchmarks._harness import Context, Prepared, Section, SyncLoop
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import (
    KEY_PREFIX,
    RESULT,
    delete_keys,
    expect,
    fail,
    ours,
    redis_sync,
    work,
)

SECTION = Section(
    "shared_state",
    "Shared-state breaker (Redis)",
    "The breaker's state is kept in the local Redis (db 14) so that every process shares it. "
    "pybreaker's `CircuitRedisStorage` reads and writes Redis on every call; resilience_kit's "
    "`RedisStorage` keeps a local view that Redis updates by pub/sub, so a CLOSED call and an "
    "OPEN rejection send no command at all (the verification counts them with `INFO "
    "commandstats`), and only a recorded failure costs a round trip (one `EVALSHA`). The "
    "in-process breaker is the yardstick for the added cost. Same decorators and thresholds "
    "as the in-process breaker section.",
    order=50,
    requires=("resilience_kit.breaker", "resilience_kit.breaker.redis_storage"),
)

closed = SECTION.group("closed_sync", "CLOSED, sync call", SyncLoop())
opened = SECTION.group("open_sync", "OPEN, sync rejection", SyncLoop(raises=True))
failing = SECTION.group("failure_sync", "CLOSED, sync call that fails", SyncLoop(raises=True))

_VERIFY_CALLS = 10_000


@closed.baseline("plain call")
def _plain_call(ctx: Context) -> Prepared:
    return Prepared(work, returns=RESULT)


@opened.baseline("plain raise+catch")
def _plain_raise(ctx: Context) -> Prepared:
    return Prepared(fail, raises=ValueError)


@failing.baseline("plain raise+catch")
def _plain_failure(ctx: Context) -> Prepared:
    return Prepared(fail, raises=ValueError)


def _commands(client: Any) -> int:
    """Commands the server has run so far (every client's: the verification allows for
    other users of the shared server)."""
    stats = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


def _ours_redis(ctx: Context, threshold: int, timeout: float) -> tuple[Any, Any, Any, str]:
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    redis_storage = ours("resilience_kit.breaker.redis_storage", "RedisStorage")
    client = redis_sync(ctx)
    prefix = f"{KEY_PREFIX}-{ctx.unique('rk-storage')}"
    storage = redis_storage(client, prefix=prefix)
    breaker = circuit_breaker(
        ctx.unique("rk"), failure_threshold=threshold, recovery_timeout=timeout, storage=storage
    )
    return breaker, storage, client, prefix


def _no_commands_per_call(op: Any, storage: Any, client: Any) -> None:
    """Run the operation many times; it must send nothing to Redis (steady state)."""
    sent: list[object] = []
    script = storage.script

    def counting(*args: Any) -> Any:
        sent.append(args)
        return script(*args)

    storage.script = counting
    before = _commands(client)
    try:
        for _ in range(_VERIFY_CALLS):
            with contextlib.suppress(Exception):
                op()
    finally:
        storage.script = script
    server_side = _commands(client) - before - 1  # the INFO itself
    expect(sent == [], f"{len(sent)} scripts sent over {_VERIFY_CALLS} calls, expected 0")
    # The exact count is the client-side one above. The server's figure includes every other
    # client of the shared server, so it can only show that not one command per call was run.
    expect(
        server_side < _VERIFY_CALLS,
        f"INFO commandstats grew by {server_side} over {_VERIFY_CALLS} calls",
    )


@closed.add("resilience_kit (in memory)", "resilience-kit")
def _ours_memory_closed(ctx: Context) -> Prepared:
    return b.closed_case(b.OURS, work)(ctx)


@closed.add("resilience_kit + RedisStorage", "resilience-kit")
def _ours_redis_closed(ctx: Context) -> Prepared:
    breaker, storage, client, prefix = _ours_redis(ctx, 5, 60.0)
    op = breaker(work)
    op()  # the first call reads the shared state; steady state from here

    def check() -> None:
        expect(str(breaker.state) == "CLOSED", f"the breaker is {breaker.state}")
        _no_commands_per_call(op, storage, client)

    return Prepared(
        op,
        returns=RESULT,
        check=check,
        close=lambda: (storage.close(), breaker.unregister(), delete_keys(client, f"*{prefix}*")),
        note="0 Redis commands per call (INFO commandstats)",
    )


@opened.add("resilience_kit + RedisStorage", "resilience-kit")
def _ours_redis_open(ctx: Context) -> Prepared:
    breaker, storage, client, prefix = _ours_redis(ctx, 1, 3600.0)
    open_error = ours("resilience_kit", "CircuitOpenError")
    op = breaker(fail)
    with contextlib.suppress(ValueError):
        op()

    def check() -> None:
        expect(str(breaker.state) == "OPEN", f"the breaker is {breaker.state}")
        _no_commands_per_call(op, storage, client)

    return Prepared(
        op,
        raises=open_error,
        check=check,
        close=lambda: (storage.close(), breaker.unregister(), delete_keys(client, f"*{prefix}*")),
        note="0 Redis commands per rejection (INFO commandstats)",
    )


@failing.add("resilience_kit (in memory)", "resilience-kit")
def _ours_memory_failure(ctx: Context) -> Prepared:
    built = b.OURS.build(ctx, 10**9, 60.0)
    return Prepared(built.decorate(fail), raises=ValueError, close=built.close)


@failing.add("resilience_kit + RedisStorage", "resilience-kit")
def _ours_redis_failure(ctx: Context) -> Prepared:
    breaker, storage, client, prefix = _ours_redis(ctx, 10**9, 60.0)
    return Prepared(
        breaker(fail),
        raises=ValueError,
        close=lambda: (storage.close(), breaker.unregister(), delete_keys(client, f"*{prefix}*")),
        note="one EVALSHA per recorded failure: in Redis before the call returns",
    )


@failing.add("pybreaker + Redis storage", "pybreaker")
def _pybreaker_redis_failure(ctx: Context) -> Prepared:
    built = b.PYBREAKER_REDIS.build(ctx, 10**9, 60.0)
    return Prepared(built.decorate(fail), raises=ValueError, close=built.close)


closed.add(b.PYBREAKER_REDIS.label, b.PYBREAKER_REDIS.library)(
    b.closed_case(b.PYBREAKER_REDIS, work)
)
opened.add("resilience_kit (in memory)", "resilience-kit")(b.open_case(b.OURS, fail))
opened.add(b.PYBREAKER_REDIS.label, b.PYBREAKER_REDIS.library)(b.open_case(b.PYBREAKER_REDIS, fail))

# The target: a CLOSED call with RedisStorage adds at most twice what the in-process
# breaker adds (150 ns, its own target), with no Redis command.
SECTION.target(
    "closed_sync", "resilience_kit + RedisStorage", 300, "Shared breaker, CLOSED, sync call"
)
