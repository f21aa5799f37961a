"""Cache hits: the cost of a hit through a caching decorator, over reading the value by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._harness import AsyncLoop, Context, Prepared, Section, SyncLoop, Unavailable
from benchmarks.sections._common import (
    KEY_PREFIX,
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    delete_keys,
    expect,
    ours,
    redis_sync,
)

SECTION = Section(
    "cache",
    "Cache hit",
    "Every case reads the same small JSON document that is already cached; verification checks "
    "the cached function ran once (to fill the cache) and never again. Redis: the baseline is "
    "a raw `GET` on a `redis.asyncio` client plus `json.loads`; the libraries use their Redis "
    "backends on the same local server (db 14). In memory: the baseline is a `dict` lookup in "
    "an `async def`. Both peers are async-only, so are those rows; the sync groups compare "
    "resilience_kit with a raw sync `GET` + `json.loads` and with cachetools' `ttl_cache`. "
    "resilience_kit's Redis rows check, before timing, that ten hits send exactly ten commands "
    "(one `EVALSHA` each); its two-tier row is an L1 hit (nothing leaves the process).",
    order=30,
    requires=("resilience_kit.cache",),
)

VALUE = {"id": 42, "name": "benchmark", "tags": ["a", "b"], "score": 0.5}
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

redis_hit = SECTION.group("redis_hit", "Hit, Redis backend", AsyncLoop())
memory_hit = SECTION.group("memory_hit", "Hit, in-memory backend", AsyncLoop())
redis_hit_sync = SECTION.group("redis_hit_sync", "Hit, Redis backend, sync", SyncLoop())
memory_hit_sync = SECTION.group("memory_hit_sync", "Hit, in-memory backend, sync", SyncLoop())


def _cached_case(
    build: Callable[[Context, Callable[[int], Awaitable[Any]]], Any],
) -> Callable[[Context], Awaitable[Prepared]]:
    """A setup around ``build(ctx, fn) -> (decorated, close[, verify])``: fills the cache,
    runs ``verify()`` (awaited) when given, then hits."""

    async def setup(ctx: Context) -> Prepared:
        calls = [0]

        async def load(item: int) -> dict[str, Any]:
            calls[0] += 1
            return dict(VALUE)

        decorated, close, *verify = await build(ctx, load)
        await decorated(42)  # the miss that fills the cache
        expect(calls[0] == 1, "filling the cache should run the function once")
        for check_first in verify:
            await check_first()

        async def op() -> Any:
            return await decorated(42)

        def check() -> None:
            expect(calls[0] == 1, f"a hit must not run the function; it ran {calls[0]} times")

        return Prepared(op, returns=VALUE, check=check, close=close)

    return setup


# Baselines ------------------------------------------------------------------------------------


@redis_hit.baseline("raw GET + json.loads")
async def _raw_get(ctx: Context) -> Prepared:
    import redis.asyncio

    redis_sync(ctx)  # Unavailable when the server is not there
    client = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    key = f"{KEY_PREFIX}:raw:{ctx.unique('raw')}"
    await client.set(key, json.dumps(VALUE))

    async def op() -> Any:
        return json.loads(await client.get(key))

    async def close() -> None:
        await client.delete(key)
        await client.aclose()

    return Prepared(op, returns=VALUE, close=close)


@memory_hit.baseline("dict lookup")
def _dict_lookup(ctx: Context) -> Prepared:
    store = {"item:42": VALUE}

    async def op() -> Any:
        return store["item:42"]

    return Prepared(op, returns=VALUE)


# resilience_kit ---------------------------------------------------------------------------------


def _count_commands(client: Any) -> list[str]:
    """Record the commands ``client`` sends from now on (until ``_uncount``)."""
    sent: list[str] = []
    original = client.execute_command

    if asyncio.iscoroutinefunction(original):

        async def execute_async(*args: Any, **options: Any) -> Any:
            sent.append(str(args[0]))
            return await original(*args, **options)

        client.execute_command = execute_async
    else:

        def execute(*args: Any, **options: Any) -> Any:
            sent.append(str(args[0]))
            return original(*args, **options)

        client.execute_command = execute
    return sent


def _uncount(client: Any) -> None:
    del client.execute_command  # the instance attribute goes, the method is back


def _ours(backend_name: str) -> Callable[[Context, Any], Awaitable[Any]]:
    async def build(ctx: Context, fn: Any) -> Any:
        cached = ours("resilience_kit.cache", "cached")
        if backend_name == "MemoryBackend":
            backend = ours("resilience_kit.cache", "MemoryBackend")()
            return cached(ctx.unique("rk"), ttl=600, backend=backend)(fn), None
        client = redis_sync(ctx)
        namespace = f"{KEY_PREFIX}-{ctx.unique('rk-cache')}"
        remote = ours("resilience_kit.cache", "RedisBackend")(REDIS_URL, namespace=namespace)
        backend = remote
        if backend_name == "TieredBackend":
            backend = ours("resilience_kit.cache", "TieredBackend")(
                remote, channel=f"{namespace}:inv"
            )
            expect(backend.wait_live(), "the two-tier listener should subscribe")
        decorated = cached(ctx.unique("rk"), ttl=600, backend=backend)(fn)

        async def close() -> None:
            if backend_name == "TieredBackend":
                backend.close()
            await remote.aclose()
            remote.breaker.unregister()
            delete_keys(client, f"*{namespace}*")

        async def one_round_trip() -> None:
            sent = _count_commands(remote.async_client())
            for _ in range(10):
                await decorated(42)
            _uncount(remote.async_client())
            wanted = [] if backend_name == "TieredBackend" else ["EVALSHA"] * 10
            expect(sent == wanted, f"ten hits should send {wanted}, sent {sent}")

        return decorated, close, one_round_trip

    return build


redis_hit.add("resilience_kit", "resilience-kit-py")(_cached_case(_ours("RedisBackend")))
memory_hit.add("resilience_kit", "resilience-kit-py")(_cached_case(_ours("MemoryBackend")))
memory_hit.add("resilience_kit two-tier (L1 hit)", "resilience-kit-py")(
    _cached_case(_ours("TieredBackend"))
)


# Sync groups ------------------------------------------------------------------------------------


def _sync_case(
    build: Callable[[Context, Callable[[int], Any]], Any],
) -> Callable[[Context], Prepared]:
    """The sync twin of ``_cached_case``."""

    def setup(ctx: Context) -> Prepared:
        calls = [0]

        def load(item: int) -> dict[str, Any]:
            calls[0] += 1
            return dict(VALUE)

        decorated, close = build(ctx, load)
        decorated(42)
        expect(calls[0] == 1, "filling the cache should run the function once")

        def op() -> Any:
            return decorated(42)

        def check() -> None:
            expect(calls[0] == 1, f"a hit must not run the function; it ran {calls[0]} times")

        return Prepared(op, returns=VALUE, check=check, close=close)

    return setup


@redis_hit_sync.baseline("raw GET + json.loads")
def _raw_get_sync(ctx: Context) -> Prepared:
    client = redis_sync(ctx)
    key = f"{KEY_PREFIX}:raw:{ctx.unique('raw-sync')}"
    client.set(key, json.dumps(VALUE))

    def op() -> Any:
        return json.loads(client.get(key))

    return Prepared(op, returns=VALUE, close=lambda: client.delete(key))


@memory_hit_sync.baseline("dict lookup")
def _dict_lookup_sync(ctx: Context) -> Prepared:
    store = {"item:42": VALUE}

    def op() -> Any:
        return store["item:42"]

    return Prepared(op, returns=VALUE)


@redis_hit_sync.add("resilience_kit", "resilience-kit-py")
def _ours_redis_sync(ctx: Context) -> Prepared:
    def build(ctx: Context, fn: Any) -> Any:
        cached = ours("resilience_kit.cache", "cached")
        client = redis_sync(ctx)
        namespace = f"{KEY_PREFIX}-{ctx.unique('rk-cache-sync')}"
        backend = ours("resilience_kit.cache", "RedisBackend")(REDIS_URL, namespace=namespace)
        decorated = cached(ctx.unique("rk"), ttl=600, backend=backend)(fn)
        decorated(42)
        sent = _count_commands(backend.sync_client())
        for _ in range(10):
            decorated(42)
        _uncount(backend.sync_client())
        expect(sent == ["EVALSHA"] * 10, f"ten sync hits should send ten EVALSHAs, sent {sent}")

        def close() -> None:
            backend.close()
            backend.breaker.unregister()
            delete_keys(client, f"*{namespace}*")

        return decorated, close

    return _sync_case(build)(ctx)


@memory_hit_sync.add("resilience_kit", "resilience-kit-py")
def _ours_memory_sync(ctx: Context) -> Prepared:
    def build(ctx: Context, fn: Any) -> Any:
        cached = ours("resilience_kit.cache", "cached")
        backend = ours("resilience_kit.cache", "MemoryBackend")()
        return cached(ctx.unique("rk"), ttl=600, backend=backend)(fn), None

    return _sync_case(build)(ctx)


@memory_hit_sync.add("cachetools ttl_cache", "cachetools")
def _cachetools(ctx: Context) -> Prepared:
    def build(ctx: Context, fn: Any) -> Any:
        from cachetools.func import ttl_cache

        return ttl_cache(maxsize=1024, ttl=600)(fn), None

    return _sync_case(build)(ctx)


# cashews --------------------------------------------------------------------------------------


def _cashews(url: str) -> Callable[[Context, Any], Awaitable[Any]]:
    async def build(ctx: Context, fn: Any) -> Any:
        from cashews import Cache

        if url.startswith("redis"):
            redis_sync(ctx)
        cache = Cache()
        cache.setup(url)
        key = f"{KEY_PREFIX}:{ctx.unique('cashews')}:{{item}}"

        async def close() -> None:
            await cache.delete_match(key.replace("{item}", "*"))
            await cache.close()

        return cache.cache(ttl="10m", key=key)(fn), close

    return build


redis_hit.add("cashews", "cashews")(_cached_case(_cashews(REDIS_URL)))
memory_hit.add("cashews", "cashews")(_cached_case(_cashews("mem://")))


# aiocache -------------------------------------------------------------------------------------


def _aiocache(redis: bool) -> Callable[[Context, Any], Awaitable[Any]]:
    async def build(ctx: Context, fn: Any) -> Any:
        from aiocache import Cache, cached
        from aiocache.serializers import JsonSerializer

        prefix = f"{KEY_PREFIX}:{ctx.unique('aiocache')}"
        options: dict[str, Any] = {"serializer": JsonSerializer()}
        if redis:
            redis_sync(ctx)
            if not hasattr(Cache, "REDIS"):
                raise Unavailable("aiocache's Redis backend is not installed")
            options.update(cache=Cache.REDIS, endpoint=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
        decorator = cached(ttl=600, key_builder=lambda _fn, item: f"{prefix}:{item}", **options)
        decorated = decorator(fn)

        async def close() -> None:
            if redis:
                await decorator.cache.delete(f"{prefix}:42")
            await decorator.cache.close()

        return decorated, close

    return build


redis_hit.add("aiocache", "aiocache")(_cached_case(_aiocache(redis=True)))
memory_hit.add("aiocache", "aiocache")(_cached_case(_aiocache(redis=False)))


# Issue 12's targets, judged on instruction counts (``--instructions``): added cost per hit
# over each group's baseline. aiocache is async-only, so the sync Redis hit is held to a third
# of its async hit too.
SECTION.instruction_target(
    "Redis hit ≤ 1/3 of aiocache's, async (added instructions)",
    case=("redis_hit", "resilience_kit"),
    reference=("redis_hit", "aiocache"),
    max_ratio=1 / 3,
)
SECTION.instruction_target(
    "Redis hit, sync ≤ 1/3 of aiocache's async (added instructions)",
    case=("redis_hit_sync", "resilience_kit"),
    reference=("redis_hit", "aiocache"),
    max_ratio=1 / 3,
)
SECTION.instruction_target(
    "Memory hit, sync ≤ cachetools ttl_cache (added instructions)",
    case=("memory_hit_sync", "resilience_kit"),
    reference=("memory_hit_sync", "cachetools ttl_cache"),
    max_ratio=1.0,
)
SECTION.instruction_target(
    "Memory hit, async ≤ 1/10 of aiocache's (added instructions)",
    case=("memory_hit", "resilience_kit"),
    reference=("memory_hit", "aiocache"),
    max_ratio=0.1,
)
SECTION.instruction_target(
    "Two-tier L1 hit ≤ 1.5x the memory backend's, async (added instructions)",
    case=("memory_hit", "resilience_kit two-tier (L1 hit)"),
    reference=("memory_hit", "resilience_kit"),
    max_ratio=1.5,
)
