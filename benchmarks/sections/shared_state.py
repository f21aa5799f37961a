"""Shared-state breakers: a breaker whose state lives in Redis, shared by every process."""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from typing import Any

from benchmarks._harness import AsyncLoop, Context, Prepared, Section, SyncLoop
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import (
    KEY_PREFIX,
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    RESULT,
    awork,
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
    "OPEN rejection send no command at all, from a sync or an asyncio client (the "
    "verification counts the scripts sent and `INFO commandstats`), and only a recorded "
    "failure costs a round trip (one `EVALSHA`). The in-process breaker is the yardstick for "
    "the added cost. Same decorators and thresholds as the in-process breaker section. The "
    "storages' background thread resynchronises (and wakes when idle) once an hour here "
    "instead of once a second: that work is per second, not per call (a wake-up is about "
    "60,000 instructions; a resync one pipelined `EVALSHA` round trip for all of a storage's "
    "breakers), and under callgrind, which runs about fifty times slower, it would land in "
    "the per-call counts of whichever case of the group is being counted.",
    order=50,
    requires=("resilience_kit.breaker", "resilience_kit.breaker.redis_storage"),
)

closed = SECTION.group("closed_sync", "CLOSED, sync call", SyncLoop())
closed_async = SECTION.group("closed_async", "CLOSED, async call (asyncio client)", AsyncLoop())
opened = SECTION.group("open_sync", "OPEN, sync rejection", SyncLoop(raises=True))
failing = SECTION.group("failure_sync", "CLOSED, sync call that fails", SyncLoop(raises=True))

_VERIFY_CALLS = 10_000
_RESYNC = 3600.0  # the storages' resync interval here (see the description)


@closed.baseline("plain call")
def _plain_call(ctx: Context) -> Prepared:
    return Prepared(work, returns=RESULT)


@closed_async.baseline("plain await")
def _plain_await(ctx: Context) -> Prepared:
    return Prepared(awork, returns=RESULT)


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


def _quiet_background() -> None:
    """Make the storages' background threads wake only for announcements (none here) or
    their next resync, an hour away (``_RESYNC``), instead of at least once a second: a
    wake-up is about 60,000 instructions, per second and not per call, but under callgrind a
    loop of calls takes long enough to catch one, and whichever case of the group is being
    counted would pay for it. Call it before making a storage."""
    module = importlib.import_module("resilience_kit.breaker._redis.storage")
    module._IDLE = _RESYNC


def _settle(storage: Any) -> None:
    """Wait until the storage's background thread has subscribed and made its first resync
    (a start-up of a few million instructions under callgrind that must not land in a
    count)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listener = storage._listener
        if storage.listening and listener is not None and listener.rounds >= 1:
            return
        time.sleep(0.01)
    raise AssertionError("the storage's background thread did not start")


def _ours_redis(ctx: Context, threshold: int, timeout: float) -> tuple[Any, Any, Any, str]:
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    redis_storage = ours("resilience_kit.breaker.redis_storage", "RedisStorage")
    client = redis_sync(ctx)
    prefix = f"{KEY_PREFIX}-{ctx.unique('rk-storage')}"
    _quiet_background()
    storage = redis_storage(client, prefix=prefix, resync_interval=_RESYNC)
    breaker = circuit_breaker(
        ctx.unique("rk"), failure_threshold=threshold, recovery_timeout=timeout, storage=storage
    )
    return breaker, storage, client, prefix


class _Counting:
    """Stands in for a storage's script and counts the scripts the calling thread sends (the
    subscriber thread's resync, once a second whatever the traffic, is not the calls' doing)."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.caller = threading.get_ident()
        self.sent = 0

    def __call__(self, client: Any, keys: Any, args: Any) -> Any:
        self.sent += threading.get_ident() == self.caller
        return self.script(client, keys, args)

    async def call_async(self, client: Any, keys: Any, args: Any) -> Any:
        self.sent += threading.get_ident() == self.caller
        return await self.script.call_async(client, keys, args)

    def run_many(self, client: Any, calls: Any) -> Any:
        return self.script.run_many(client, calls)


async def _no_commands_per_call(op: Any, storage: Any, client: Any) -> None:
    """Run the operation many times; it must send nothing to Redis (steady state)."""
    script = storage.script
    counting = _Counting(script)
    storage.script = counting
    before = _commands(client)
    try:
        for _ in range(_VERIFY_CALLS):
            with contextlib.suppress(Exception):
                result = op()
                if hasattr(result, "__await__"):
                    await result
    finally:
        storage.script = script
    server_side = _commands(client) - before - 1  # the INFO itself
    expect(counting.sent == 0, f"{counting.sent} scripts sent over {_VERIFY_CALLS} calls")
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
    _settle(storage)

    async def check() -> None:
        expect(str(breaker.state) == "CLOSED", f"the breaker is {breaker.state}")
        await _no_commands_per_call(op, storage, client)

    return Prepared(
        op,
        returns=RESULT,
        check=check,
        close=lambda: (storage.close(), breaker.unregister(), delete_keys(client, f"*{prefix}*")),
        note="0 Redis commands per call (INFO commandstats)",
    )


@closed_async.add("resilience_kit (in memory)", "resilience-kit")
def _ours_memory_closed_async(ctx: Context) -> Prepared:
    return b.closed_case(b.OURS, awork)(ctx)


@closed_async.add("resilience_kit + RedisStorage", "resilience-kit")
async def _ours_redis_closed_async(ctx: Context) -> Prepared:
    import redis.asyncio

    sync_client = redis_sync(ctx)  # Unavailable when the server is not there
    client = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    redis_storage = ours("resilience_kit.breaker.redis_storage", "RedisStorage")
    prefix = f"{KEY_PREFIX}-{ctx.unique('rk-storage')}"
    _quiet_background()
    storage = redis_storage(client, prefix=prefix, resync_interval=_RESYNC)
    breaker = circuit_breaker(ctx.unique("rk"), failure_threshold=5, storage=storage)
    op = breaker(awork)
    await op()  # the first call reads the shared state; steady state from here
    _settle(storage)

    async def check() -> None:
        expect(bool(breaker._cell.clean), "the async breaker is not on its lock-free fast path")
        await _no_commands_per_call(op, storage, sync_client)

    async def close() -> None:
        storage.close()
        breaker.unregister()
        delete_keys(sync_client, f"*{prefix}*")
        await client.aclose()

    return Prepared(
        op,
        returns=RESULT,
        check=check,
        close=close,
        note="0 Redis commands per call (INFO commandstats)",
    )


@opened.add("resilience_kit + RedisStorage", "resilience-kit")
def _ours_redis_open(ctx: Context) -> Prepared:
    breaker, storage, client, prefix = _ours_redis(ctx, 1, 3600.0)
    open_error = ours("resilience_kit", "CircuitOpenError")
    op = breaker(fail)
    with contextlib.suppress(ValueError):
        op()
    _settle(storage)

    async def check() -> None:
        expect(str(breaker.state) == "OPEN", f"the breaker is {breaker.state}")
        await _no_commands_per_call(op, storage, client)

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
    _settle(storage)
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
# breaker adds (150 ns, its own target), with no Redis command (the cases' verification).
SECTION.target(
    "closed_sync", "resilience_kit + RedisStorage", 300, "Shared breaker, CLOSED, sync call"
)
# The same, judged on instruction counts (``--instructions``), sync and asyncio clients.
for group, kind in (("closed_sync", "sync"), ("closed_async", "async")):
    SECTION.instruction_target(
        f"RedisStorage, CLOSED, {kind}: 0 Redis commands and ≤ 2x the in-memory breaker's "
        "added instructions",
        case=(group, "resilience_kit + RedisStorage"),
        reference=(group, "resilience_kit (in memory)"),
        max_ratio=2.0,
    )
