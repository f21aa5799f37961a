"""Two tiers on real Redis: local hits send nothing; invalidations reach every process fast."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from resilience_kit.cache import RedisBackend, TieredBackend, cached, invalidate_prefix
from resilience_kit.cache._decorator import _lookup
from resilience_kit.errors import ConfigurationError

PrivateCluster = Any  # the fixture's type lives in conftest.py

pytestmark = pytest.mark.timeout(120)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pair(private_redis: Any) -> Iterator[tuple[TieredBackend, TieredBackend]]:
    """Two tiered backends standing for two processes (each has its own L1 and listener).

    On a private server, so that counting its commands counts only ours.
    """
    redis_url = private_redis.url
    namespace = unique("tier")
    channel = unique("chan")
    one = TieredBackend(RedisBackend(redis_url, namespace=namespace), channel=channel)
    two = TieredBackend(RedisBackend(redis_url, namespace=namespace), channel=channel)
    assert one.wait_live()
    assert two.wait_live()
    yield one, two
    for backend in (one, two):
        backend.close()
        backend.remote.close()
        backend.remote.breaker.unregister()


def commands(client: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in client.info("commandstats").values())


def wait_for(condition: Any, timeout: float = 1.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter() - started
        time.sleep(0.001)
    raise AssertionError("not within the timeout")


def test_local_hits_send_nothing_and_invalidation_reaches_the_other_process_fast(
    pair: tuple[TieredBackend, TieredBackend],
) -> None:
    one, two = pair
    prefix = unique("tiered")
    calls: list[str] = []
    version = ["v1"]

    def source(n: int) -> str:
        calls.append(version[0])
        return f"{version[0]}:{n}"

    get_one = cached(prefix, backend=one)(source)
    # The second "process": the same function (so the prefix may be registered again).
    get_two = cached(prefix, backend=two)(source)
    seen = two._epoch  # the invalidation messages two has applied
    assert get_one(1) == "v1:1"
    wait_for(lambda: two._epoch > seen, 5)  # one's write message, before two reads (see below)
    assert get_two(1) == "v1:1"  # from Redis, then kept in two's L1
    assert calls == ["v1"]
    key = _lookup(prefix).spec.keys.build((1,), {})
    assert key is not None
    # A hit fills each L1; the message of one's write may reach two after two's read and drop
    # its copy (the safe way round), so the hits go on until both hold it.
    wait_for(lambda: get_one(1) == get_two(1) and key in one.local._data and key in two.local._data)

    watcher = redis.Redis.from_url(one.remote._clients.url or "")
    before = commands(watcher)
    for _ in range(100):
        assert get_one(1) == "v1:1"
        assert get_two(1) == "v1:1"
    assert commands(watcher) - before <= 1  # the watcher's own INFO

    version[0] = "v2"
    get_one.invalidate(1)  # deleted in one process...
    elapsed = wait_for(lambda: key not in two.local._data, 0.1)  # ...gone from the other's L1
    assert elapsed < 0.1
    assert get_two(1) == "v2:1"

    assert get_one(1) == "v2:1"
    invalidate_prefix(prefix)  # through the last registration: process two
    generation = int(watcher.get(one.remote.generation_key(prefix)) or 0)
    elapsed = wait_for(lambda: one._generations.get(prefix) == generation, 0.1)
    assert elapsed < 0.1  # process one heard of it
    version[0] = "v3"
    assert get_one(1) == "v3:1"
    watcher.close()


def test_batches_reach_every_l1_and_read_fresh_entries_only(
    pair: tuple[TieredBackend, TieredBackend],
) -> None:
    from resilience_kit.testing import FakeClock, use_clock

    one, two = pair
    prefix = unique("tbatch")
    version = ["v1"]

    def source(user: int) -> str:
        return f"{version[0]}:{user}"

    with use_clock(FakeClock()) as clock:
        get_one = cached(prefix, ttl=10, stale_ttl=60, backend=one, key=str)(source)
        get_two = cached(prefix, ttl=10, stale_ttl=60, backend=two, key=str)(source)
        key = _lookup(prefix).spec.keys.build((1,), {})
        assert key is not None
        get_one(1)
        wait_for(lambda: get_two(1) == "v1:1" and key in two.local._data)

        one.set_many(prefix, {"1": "batch:1"}, ttl=10)  # written by one...
        wait_for(lambda: key not in two.local._data, 5)  # ...dropped from two's L1
        assert get_two(1) == "batch:1"
        assert two.get_many(prefix, ["1", "2"]) == {"1": "batch:1"}

        wait_for(lambda: get_two(1) == "batch:1" and key in two.local._data)

        async def write() -> None:
            await one.aset_many(prefix, {"1": "abatch:1"}, ttl=10)
            await one.remote.aclose()

        asyncio.run(write())
        wait_for(lambda: key not in two.local._data, 5)
        assert get_two(1) == "abatch:1"

        clock.advance(10.5)  # past the ttl, within stale_ttl
        assert one.get_many(prefix, ["1"]) == two.get_many(prefix, ["1"]) == {}

        async def read() -> dict[str, Any]:
            found = await two.aget_many(prefix, ["1"])
            await two.remote.aclose()
            return found

        assert asyncio.run(read()) == {}


def test_the_l1_is_bypassed_while_the_listener_is_down(private_redis: Any) -> None:
    backend = TieredBackend(RedisBackend(private_redis.url, namespace="down"))
    assert backend.wait_live()
    calls = []

    @cached(unique("bypass"), backend=backend)
    def get(n: int) -> int:
        calls.append(n)
        return n

    get(1), get(1)
    assert backend.local.size() == 1
    private_redis.stop()
    wait_for(lambda: not backend._live.is_set(), 5)
    assert backend.local.size() == 0
    assert get(1) == 1  # computed (Redis is down, the L1 is not trusted)
    private_redis.start()
    assert backend.wait_live(10)
    backend.remote.breaker.reset()
    get(1), get(1)
    assert backend.local.size() == 1
    backend.close()
    backend.remote.close()
    backend.remote.breaker.unregister()


def _tiered_child(url: str, namespace: str, channel: str, prefix: str, pipe: Any) -> None:
    """Another OS process with its own L1: reports when each invalidation emptied it (wall)."""
    backend = TieredBackend(RedisBackend(url, namespace=namespace), channel=channel)
    assert backend.wait_live(10)

    @cached(prefix, backend=backend)
    def get(n: int) -> int:
        return n

    key = _lookup(prefix).spec.keys.build((1,), {})
    assert key is not None
    for _ in range(2):  # 1: a key's invalidation, 2: the prefix's
        deadline = time.monotonic() + 10
        while backend.peek(prefix, key) is None and time.monotonic() < deadline:
            get(1)  # fills the L1 (once the parent's own write message has passed)
            time.sleep(0.002)
        pipe.send("held" if backend.peek(prefix, key) is not None else "never held")
        deadline = time.monotonic() + 10
        while backend.peek(prefix, key) is not None and time.monotonic() < deadline:
            time.sleep(0.0005)
        pipe.send(time.time())  # past the deadline: seconds late, the parent fails
    backend.close()
    backend.remote.close()


def test_invalidations_reach_another_os_process_within_100_ms(private_redis: Any) -> None:
    import multiprocessing

    namespace, channel, prefix = unique("mp"), unique("mpchan"), unique("mp")
    backend = TieredBackend(RedisBackend(private_redis.url, namespace=namespace), channel=channel)
    assert backend.wait_live()

    @cached(prefix, backend=backend)
    def get(n: int) -> int:
        return n

    get(1)
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    child = context.Process(
        target=_tiered_child, args=(private_redis.url, namespace, channel, prefix, theirs)
    )
    child.start()
    try:
        for invalidate in (lambda: get.invalidate(1), lambda: invalidate_prefix(prefix)):
            assert mine.poll(30)
            assert mine.recv() == "held"
            sent = time.time()
            invalidate()
            assert mine.poll(10)
            seen = mine.recv()
            assert seen - sent < 0.1, f"the other process dropped it after {seen - sent:.3f} s"
        child.join(10)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
        backend.close()
        backend.remote.close()
        backend.remote.breaker.unregister()


# -- Redis Cluster and asyncio ------------------------------------------------------------------


def _cluster_pair(cluster: PrivateCluster, *, is_async: bool) -> tuple[Any, Any, str]:
    """Two "processes" on the cluster: each its own client, RedisBackend and TieredBackend."""
    namespace, channel = unique("ctier"), unique("cchan")
    made = []
    for _ in range(2):
        if is_async:
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            client: Any = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes]
            )
        else:
            client = cluster.client()
        made.append(TieredBackend(RedisBackend(client, namespace=namespace), channel=channel))
    return made[0], made[1], namespace


async def _apoll(condition: Any, *hits: Any, deadline: float = 5.0) -> None:
    """Call ``hits`` (each with 1) until ``condition()`` holds, letting the loop run."""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        for hit in hits:
            await hit(1)  # a hit fills the L1
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("not within the deadline")


def _poll(condition: Any, deadline: float = 5.0) -> float:
    """Seconds until ``condition()`` holds (generous deadline: a loaded machine)."""
    return wait_for(condition, deadline)


def test_tiered_on_a_cluster_invalidations_reach_the_other_process(
    redis_cluster: PrivateCluster,
) -> None:
    one, two, _ = _cluster_pair(redis_cluster, is_async=False)
    assert one.wait_live(10)
    assert two.wait_live(10)
    hot, other = unique("chot"), unique("cother")
    calls: list[tuple[str, int]] = []

    def make(prefix: str, backend: TieredBackend) -> Any:
        def source(n: int) -> str:
            calls.append((prefix, n))
            return f"{prefix}:{n}:{len(calls)}"

        return cached(prefix, backend=backend)(source)

    hot_one, hot_two = make(hot, one), make(hot, two)
    other_one, other_two = make(other, one), make(other, two)
    seen = two._epoch  # the invalidation messages two has applied
    first = hot_one(1)
    kept = other_one(1)
    # Both writes' messages reach two before it reads: a message applied after a read drops
    # the copy read (the safe way round), which would leave the checks below to chance.
    _poll(lambda: two._epoch >= seen + 2)
    assert hot_two(1) == first  # from the cluster, then in two's L1
    assert other_two(1) == kept
    hot_key = _lookup(hot).spec.keys.build((1,), {})
    other_key = _lookup(other).spec.keys.build((1,), {})
    _poll(
        lambda: (
            (hot_two(1), other_two(1)) == (first, kept)
            and hot_key in two.local._data
            and other_key in two.local._data
        )
    )
    assert len(calls) == 2  # one computation per prefix, across both "processes"

    hot_one.invalidate(1)  # one entry, from process one
    _poll(lambda: hot_key not in two.local._data)
    assert hot_two(1) != first  # recomputed: the entry is gone everywhere
    assert other_key in two.local._data  # another prefix's entry survives
    assert other_two(1) == kept

    invalidate_prefix(hot)  # through the last registration: process two
    generation = int(two.remote.sync_client().get(two.remote.generation_key(hot)) or 0)
    _poll(lambda: one._generations.get(hot) == generation)
    assert other_key in one.local._data
    assert other_key in two.local._data
    assert other_one(1) == kept
    assert other_two(1) == kept
    assert len(calls) == 3
    for backend in (one, two):
        backend.close()
        backend.remote.breaker.unregister()
        backend.remote.sync_client().close()


async def test_tiered_with_asyncio_cluster_clients(redis_cluster: PrivateCluster) -> None:
    one, two, _ = _cluster_pair(redis_cluster, is_async=True)
    assert not one.sync_capable  # an asyncio-only remote: the listener is a task
    assert await one.await_live(10)
    assert await two.await_live(10)
    hot, other = unique("achot"), unique("acother")
    calls: list[tuple[str, int]] = []

    def make(prefix: str, backend: TieredBackend) -> Any:
        async def source(n: int) -> str:
            calls.append((prefix, n))
            return f"{prefix}:{n}:{len(calls)}"

        return cached(prefix, backend=backend)(source)

    hot_one, hot_two = make(hot, one), make(hot, two)
    other_one, other_two = make(other, one), make(other, two)
    seen = two._epoch  # as in the sync test: both writes' messages applied before two reads
    first = await hot_one(1)
    kept = await other_one(1)
    await _apoll(lambda: two._epoch >= seen + 2)
    assert await hot_two(1) == first
    assert await other_two(1) == kept
    hot_key = _lookup(hot).spec.keys.build((1,), {})
    other_key = _lookup(other).spec.keys.build((1,), {})
    await _apoll(
        lambda: hot_key in two.local._data and other_key in two.local._data,
        hot_two,
        other_two,
    )

    sent: list[Any] = []
    client = two.remote.async_client()
    original = client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return await original(*args, **options)

    client.execute_command = counting
    for _ in range(20):  # L1 hits: nothing is sent
        assert await hot_two(1) == first
    assert sent == []
    del client.execute_command

    await hot_one.invalidate(1)
    await _apoll(lambda: hot_key not in two.local._data)  # the listener runs on this loop
    assert hot_key not in two.local._data
    assert await hot_two(1) != first
    assert other_key in two.local._data
    assert await other_two(1) == kept

    await invalidate_prefix(hot)
    generation = int(await client.get(two.remote.generation_key(hot)) or 0)
    await _apoll(lambda: one._generations.get(hot) == generation)
    assert one._generations.get(hot) == generation
    assert other_key in one.local._data
    assert await other_one(1) == kept
    assert len(calls) == 3
    for backend in (one, two):
        await backend.aclose()
        backend.remote.breaker.unregister()
        await backend.remote.async_client().aclose()


async def test_tiered_with_an_asyncio_client_starts_its_listener_on_first_use(
    private_redis: Any,
) -> None:
    import redis.asyncio

    namespace, channel = unique("atier"), unique("achan")
    backend = TieredBackend(
        RedisBackend(redis.asyncio.Redis.from_url(private_redis.url), namespace=namespace),
        channel=channel,
    )
    writer = TieredBackend(RedisBackend(private_redis.url, namespace=namespace), channel=channel)
    assert writer.wait_live()
    prefix = unique("afirst")
    calls: list[int] = []

    @cached(prefix, backend=backend)
    async def get(n: int) -> int:
        calls.append(n)
        return n * len(calls)

    assert await get(2) == 2  # computed; the listener starts meanwhile
    assert await backend.await_live(10)
    assert await get(2) == 2
    key = _lookup(prefix).spec.keys.build((2,), {})
    await _apoll(lambda: key in backend.local._data, lambda _: get(2))
    assert key in backend.local._data
    writer.delete(prefix, key)  # another process (a sync one) deletes it
    await _apoll(lambda: key not in backend.local._data)
    assert key not in backend.local._data
    assert await get(2) == 4  # recomputed
    with pytest.raises(ConfigurationError, match="asyncio client"):

        @cached(unique("sync-on-async"), backend=backend)
        def sync_fn() -> int:
            return 1

    await backend.aclose()
    writer.close()
    for tier in (backend, writer):
        tier.remote.breaker.unregister()
    await backend.remote.async_client().aclose()
    writer.remote.close()
