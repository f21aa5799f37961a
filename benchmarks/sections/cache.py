"""Cache hits: the cost of a hit through a caching decorator, over reading the value by hand."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._harness import AsyncLoop, Context, Prepared, Section, Unavailable
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
    "an `async def`. Both peers are async-only, so are these rows.",
    order=30,
    future=("resilience_kit.cache",),
)

VALUE = {"id": 42, "name": "benchmark", "tags": ["a", "b"], "score": 0.5}
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

redis_hit = SECTION.group("redis_hit", "Hit, Redis backend", AsyncLoop())
memory_hit = SECTION.group("memory_hit", "Hit, in-memory backend", AsyncLoop())


def _cached_case(
    build: Callable[[Context, Callable[[int], Awaitable[Any]]], Any],
) -> Callable[[Context], Awaitable[Prepared]]:
    """A setup around ``build(ctx, fn) -> (decorated, close)``: fills the cache, then hits."""

    async def setup(ctx: Context) -> Prepared:
        calls = [0]

        async def load(item: int) -> dict[str, Any]:
            calls[0] += 1
            return dict(VALUE)

        decorated, close = await build(ctx, load)
        await decorated(42)  # the miss that fills the cache
        expect(calls[0] == 1, "filling the cache should run the function once")

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


def _ours(backend_name: str) -> Callable[[Context, Any], Awaitable[Any]]:
    async def build(ctx: Context, fn: Any) -> Any:
        cached = ours("resilience_kit.cache", "cached")
        backend_type = ours("resilience_kit.cache", backend_name)
        if backend_name != "RedisBackend":
            return cached(ctx.unique("rk"), ttl=600, backend=backend_type())(fn), None
        client = redis_sync(ctx)
        namespace = f"{KEY_PREFIX}-{ctx.unique('rk-cache')}"
        backend = backend_type(REDIS_URL, namespace=namespace)
        decorated = cached(ctx.unique("rk"), ttl=600, backend=backend)(fn)
        return decorated, lambda: delete_keys(client, f"*{namespace}*")

    return build


redis_hit.add("resilience_kit", "resilience-kit-py")(_cached_case(_ours("RedisBackend")))
memory_hit.add("resilience_kit", "resilience-kit-py")(_cached_case(_ours("MemoryBackend")))


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
