"""The cache on real Redis: round trips, server figures, leases across processes, outages."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from typing import Any

import pytest
import redis

from doubles import run_together
from resilience_kit import CircuitBreaker, CircuitState
from resilience_kit.cache import (
    RedisBackend,
    cache_stats,
    cached,
    invalidate_cache,
    invalidate_pattern,
    invalidate_prefix,
    key_part,
)

PrivateRedis = PrivateCluster = Any  # the fixtures' types live in conftest.py

pytestmark = pytest.mark.timeout(120)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def command_calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_hit_is_exactly_one_round_trip_sync_and_async(private_redis: PrivateRedis) -> None:
    watcher = redis.Redis.from_url(private_redis.url)
    backend = RedisBackend(private_redis.url, namespace="it")
    calls = []

    @cached(unique("rtt"), backend=backend)
    def get(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    @cached(unique("artt"), backend=backend)
    async def aget(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    get(1)
    asyncio.run(aget(1))
    before = watcher.info("commandstats")
    total_before = sum(int(v["calls"]) for v in before.values())
    for _ in range(50):
        assert get(1) == {"n": 1}

    async def hits() -> None:
        for _ in range(50):
            assert await aget(1) == {"n": 1}
        await backend.aclose()

    asyncio.run(hits())
    after = watcher.info("commandstats")
    total_after = sum(int(v["calls"]) for v in after.values())

    def delta(command: str) -> int:
        return int(after[f"cmdstat_{command}"]["calls"]) - int(
            before.get(f"cmdstat_{command}", {}).get("calls", 0)
        )

    assert delta("evalsha") == 100
    assert delta("get") == 200  # inside the script (the entry, the generation): no round trips
    # Plus this watcher's own INFO and any HELLO/CLIENT of the new async connection.
    assert total_after - total_before - 300 <= 4
    assert calls == [1, 1]
    backend.close()
    watcher.close()


def test_info_reports_the_original_endpoints_figures(redis_url: str) -> None:
    backend = RedisBackend(redis_url, namespace=unique("info"))
    info = backend.info()
    for name in ("used_memory_human", "keyspace_hits", "keyspace_misses", "connected_clients"):
        assert info[name] is not None
    assert isinstance(info["total_keys"], int)
    assert 0.0 <= info["hit_rate"] <= 100.0
    backend.close()
    backend.breaker.unregister()


async def test_async_client_end_to_end(redis_url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    backend = RedisBackend(client, namespace=unique("ns"))
    prefix = unique("async")
    calls = []

    @cached(prefix, backend=backend, stale_ttl=5)
    async def get(n: int) -> tuple[int, str]:
        calls.append(n)
        return (n, "x" * 5000)  # compressed on the way in

    assert await get(1) == (1, "x" * 5000)
    assert await get(1) == (1, "x" * 5000)
    await invalidate_prefix(prefix)
    assert await get(1) == (1, "x" * 5000)
    assert calls == [1, 1]
    assert (await backend.ainfo())["total_keys"] >= 1
    await backend.aset_many(prefix, {"a": [1], "b": {2: 3}}, ttl=30)
    assert await backend.aget_many(prefix, ["a", "b", "c"]) == {"a": [1], "b": {2: 3}}
    await client.aclose()
    backend.breaker.unregister()


def test_async_invalidation_runs_under_asyncio_run_on_every_kind_of_client(
    redis_url: str,
) -> None:
    url_backend = RedisBackend(redis_url, namespace=unique("arun"))
    _invalidate_under_asyncio_run(url_backend)  # awaitable twins: adelete, abump...
    url_backend.close()
    url_backend.breaker.unregister()
    sync_client = redis.Redis.from_url(redis_url)
    sync_backend = RedisBackend(sync_client, namespace=unique("arun"))
    _invalidate_under_asyncio_run(sync_backend)  # sync calls, handed back as coroutines
    sync_client.close()
    sync_backend.breaker.unregister()


def _invalidate_under_asyncio_run(backend: RedisBackend) -> None:
    prefix = unique("arun")
    calls: list[int] = []

    @cached(prefix, backend=backend)
    async def get(n: int) -> int:
        calls.append(n)
        return n

    async def settle(pending: Any = None) -> None:
        if pending is not None:
            await pending
        else:
            assert await get(1) == 1
            assert await get(1) == 1
        if backend.native_async:
            await backend.aclose()  # this loop's client: asyncio.run closes the loop

    invalidations = (
        lambda: get.invalidate(1),
        lambda: invalidate_cache(prefix, 1),
        lambda: invalidate_prefix(prefix),
        lambda: invalidate_pattern(prefix, "1"),
    )
    for number, invalidation in enumerate(invalidations, start=1):
        asyncio.run(settle())
        assert len(calls) == number  # one computation, then a hit
        asyncio.run(settle(invalidation()))
    asyncio.run(settle())
    assert len(calls) == len(invalidations) + 1
    assert cache_stats().prefixes[prefix].errors == 0


def test_get_many_leaves_out_entries_past_their_ttl_sync_and_async(redis_url: str) -> None:
    from resilience_kit.testing import FakeClock, use_clock

    backend = RedisBackend(redis_url, namespace=unique("stale"))
    prefix = unique("stale")
    calls: list[int] = []
    with use_clock(FakeClock()) as clock:

        @cached(prefix, ttl=10, stale_ttl=60, backend=backend, key=str)
        def get(user: int) -> dict[str, int]:
            calls.append(user)
            return {"user": user}

        get(1)
        backend.set_many(prefix, {"2": {"user": 2}}, ttl=10)
        both = {"1": {"user": 1}, "2": {"user": 2}}

        async def batch() -> dict[str, Any]:
            found = await backend.aget_many(prefix, ["1", "2", "3"])
            await backend.aclose()
            return found

        assert backend.get_many(prefix, ["1", "2", "3"]) == both
        assert asyncio.run(batch()) == both
        clock.advance(10.5)  # past the ttl, well within stale_ttl (and Redis's PX)
        assert backend.get_many(prefix, ["1", "2", "3"]) == {}
        assert asyncio.run(batch()) == {}
        assert get(1) == {"user": 1}  # refreshed by its caller
        assert backend.get_many(prefix, ["1", "2"]) == {"1": {"user": 1}}
    assert calls == [1, 1]
    assert cache_stats().prefixes[prefix].errors == 0
    backend.close()
    backend.breaker.unregister()


def _compete(url: str, prefix: str, namespace: str, start: float, out: Any) -> None:
    backend = RedisBackend(url, namespace=namespace, lock_timeout=10)

    @cached(prefix, backend=backend)
    def slow() -> int:
        out.put(os.getpid())
        time.sleep(1.0)
        return 42

    while time.time() < start:
        time.sleep(0.001)
    out.put(("result", slow()))


def test_four_processes_on_a_cold_key_compute_once(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    prefix, namespace = unique("procs"), unique("ns")
    start = time.time() + 3
    processes = [
        context.Process(target=_compete, args=(redis_url, prefix, namespace, start, out))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    messages = [out.get(timeout=5) for _ in range(5)]
    computations = [m for m in messages if not isinstance(m, tuple)]
    results = [m[1] for m in messages if isinstance(m, tuple)]
    assert len(computations) == 1
    assert results == [42] * 4


def _timed_calls(fn: Any, n: int) -> list[float]:
    durations = []
    for i in range(n):
        started = time.perf_counter()
        assert fn(i % 5) == (i % 5) * 2
        durations.append(time.perf_counter() - started)
    return durations


def test_killing_redis_mid_run_keeps_values_right_and_cheap(private_redis: PrivateRedis) -> None:
    guard = CircuitBreaker(unique("kill-guard"), failure_threshold=3, recovery_timeout=1.0)
    backend = RedisBackend(private_redis.url, namespace="kill", socket_timeout=0.2, breaker=guard)
    calls = []

    @cached(unique("kill"), backend=backend)
    def double(n: int) -> int:
        calls.append(n)
        return n * 2

    def plain(n: int) -> int:
        return n * 2

    _timed_calls(double, 50)
    assert len(calls) == 5
    private_redis.stop()
    _timed_calls(double, 20)  # errors until the breaker opens; values still right
    assert backend.breaker.state is CircuitState.OPEN
    guarded = sorted(_timed_calls(double, 2000))
    baseline = sorted(_timed_calls(plain, 2000))
    p99 = guarded[int(len(guarded) * 0.99)] - baseline[int(len(baseline) * 0.99)]
    assert p99 < 0.001, f"added p99 with the guard open: {p99 * 1e6:.0f} us"
    private_redis.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        before = len(calls)
        double(1)
        double(1)
        if len(calls) == before + 1:  # computed once, then a hit: caching is back
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"caching did not resume; breaker {backend.breaker.state}")
    assert cache_stats().errors > 0
    backend.close()
    backend.breaker.unregister()


def test_a_redis_cluster_works_and_survives_outages(redis_cluster: PrivateCluster) -> None:
    client = redis_cluster.client(socket_timeout=0.3, socket_connect_timeout=0.3)
    guard = CircuitBreaker(unique("cluster-guard"), failure_threshold=3, recovery_timeout=1.0)
    backend = RedisBackend(client, namespace="cl", breaker=guard)
    calls = []
    prefixes = [unique(f"cl{i}") for i in range(6)]
    functions = []
    for prefix in prefixes:

        def make(prefix: str = prefix) -> Any:
            @cached(prefix, backend=backend)
            def get(n: int) -> int:
                calls.append(n)
                return n * 2

            return get

        functions.append(make())
    for fn in functions:
        assert [fn(n) for n in range(3)] == [0, 2, 4]
        assert [fn(n) for n in range(3)] == [0, 2, 4]
    assert len(calls) == 18  # every second round was a hit: the read script's two keys share a slot
    invalidate_prefix(prefixes[0])
    functions[0](0)
    assert len(calls) == 19
    info = backend.info()
    assert info["total_keys"] >= 18
    assert info["used_memory_human"]

    redis_cluster.servers[1].stop()  # one master down: its slots fail, the others serve
    for fn in functions:
        assert [fn(n) for n in range(3)] == [0, 2, 4]

    for server in redis_cluster.servers:  # all down: the guard opens
        server.stop()
    _timed_calls(functions[0], 20)
    assert guard.state is CircuitState.OPEN
    guarded = sorted(_timed_calls(functions[0], 2000))
    baseline = sorted(_timed_calls(lambda n: n * 2, 2000))
    p99 = guarded[int(len(guarded) * 0.99)] - baseline[int(len(baseline) * 0.99)]
    assert p99 < 0.001, f"added p99 with the guard open: {p99 * 1e6:.0f} us"

    for server in redis_cluster.servers:
        server.start()
    redis_cluster.wait_ok()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        before = len(calls)
        functions[1](7)
        functions[1](7)
        if len(calls) == before + 1:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"caching did not resume on the cluster; guard {guard.state}")
    client.close()
    guard.unregister()


def _pattern_and_batches(backend: RedisBackend, tag: str) -> None:
    """invalidate_pattern stays in its prefix; get_many/set_many share the decorator's entries."""
    calls: list[tuple[str, int]] = []
    page, other = unique(f"{tag}-page"), unique(f"{tag}-other")

    @cached(page, backend=backend)
    def render(user: str, n: int) -> str:
        calls.append((user, n))
        return f"{user}/{n}"

    @cached(other, backend=backend)
    def render_other(user: str, n: int) -> str:
        calls.append((user, -n))
        return f"{user}/{n}"

    for user in ("ann", "a*", "a:b"):
        for n in (1, 2):
            render(user, n)
            render_other(user, n)
    assert len(calls) == 12
    assert invalidate_pattern(page, key_part("a*") + ":*") == 2  # not ann's, not a:b's
    assert invalidate_pattern(page, "*:2") == 2
    assert invalidate_pattern(page, "*") == 2  # what is left: ann:1, a:b:1
    for user in ("ann", "a*", "a:b"):
        render_other(user, 1)  # the other prefix kept every entry
    assert len(calls) == 12
    render("ann", 1)
    assert len(calls) == 13

    batch = unique(f"{tag}-batch")

    @cached(batch, backend=backend, key=str)
    def profile(user_id: int) -> dict[str, int]:
        calls.append(("batch", user_id))
        return {"id": user_id}

    backend.set_many(batch, {"1": {"id": 1}, "2": {"id": 2}}, ttl=60)
    assert profile(1) == {"id": 1}  # written by set_many: a hit
    assert len(calls) == 13
    profile(3)
    assert backend.get_many(batch, ["1", "2", "3", "4"]) == {
        "1": {"id": 1},
        "2": {"id": 2},
        "3": {"id": 3},
    }


async def _apattern_and_batches(backend: RedisBackend, tag: str) -> None:
    calls: list[int] = []
    page = unique(f"{tag}-apage")

    @cached(page, backend=backend)
    async def render(user: str, n: int) -> str:
        calls.append(n)
        return f"{user}/{n}"

    for user in ("ann", "a*"):
        for n in (1, 2):
            await render(user, n)
    assert await invalidate_pattern(page, key_part("a*") + ":*") == 2
    assert await invalidate_pattern(page, "*") == 2
    await render("ann", 1)
    assert len(calls) == 5
    await backend.aset_many(page, {"x": [1]}, ttl=60)
    assert await backend.aget_many(page, ["x", "y"]) == {"x": [1]}


def test_pattern_invalidation_and_batches_on_a_real_redis(redis_url: str) -> None:
    backend = RedisBackend(redis_url, namespace=unique("pat"))
    _pattern_and_batches(backend, "r")

    async def run() -> None:
        await _apattern_and_batches(backend, "r")
        await backend.aclose()

    asyncio.run(run())
    backend.close()
    backend.breaker.unregister()


def test_pattern_invalidation_and_batches_on_a_cluster(redis_cluster: PrivateCluster) -> None:
    import redis.asyncio
    from redis.asyncio.cluster import ClusterNode as AsyncNode

    client = redis_cluster.client()
    backend = RedisBackend(client, namespace="clp")
    _pattern_and_batches(backend, "c")
    client.close()
    backend.breaker.unregister()

    async def run() -> None:
        aclient = redis.asyncio.RedisCluster(
            startup_nodes=[AsyncNode(host, port) for host, port in redis_cluster.nodes]
        )
        abackend = RedisBackend(aclient, namespace="aclp")
        await _apattern_and_batches(abackend, "c")
        await aclient.aclose()
        abackend.breaker.unregister()

    asyncio.run(run())


def test_a_thousand_concurrent_callers_on_a_url_backend_neither_fail_nor_trip_it(
    redis_url: str,
) -> None:
    # redis-py 8's pools refuse a 101st connection (MaxConnectionsError); a burst of callers
    # used to make 900 reads fail and the backend's breaker open: no caching for 5 s. (A
    # generous socket timeout: opening 100 connections at once can take 0.5 s on a busy
    # machine, which is not what this test is about.)
    backend = RedisBackend(redis_url, namespace=unique("burst"), socket_timeout=3)
    prefix, sync_prefix = unique("burst"), unique("sburst")
    calls: list[int] = []

    @cached(prefix, backend=backend)
    async def slow(n: int) -> int:
        calls.append(n)
        await asyncio.sleep(0.2)
        return n * 2

    async def burst() -> None:
        assert await asyncio.gather(*(slow(21) for _ in range(1000))) == [42] * 1000  # cold
        assert await asyncio.gather(*(slow(21) for _ in range(1000))) == [42] * 1000  # hits
        await backend.aclose()

    asyncio.run(burst())
    assert calls == [21]
    stats = cache_stats().prefixes[prefix]
    assert (stats.errors, stats.hits + stats.misses) == (0, 2000)
    assert stats.hits >= 1000  # the second burst's, and the first's that read after the leader

    @cached(sync_prefix, backend=backend)
    def sync_slow(n: int) -> int:
        calls.append(n)
        time.sleep(0.2)
        return n * 2

    assert run_together(200, lambda _: sync_slow(5)) == [10] * 200
    assert calls == [21, 5]
    assert cache_stats().prefixes[sync_prefix].errors == 0
    assert backend.breaker.state is CircuitState.CLOSED
    backend.close()
    backend.breaker.unregister()
