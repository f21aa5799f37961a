"""Shared breakers on asyncio clients, against the real Redis and a private 3-master Cluster:
the lock-free fast path in steady state, transitions pushed to an asyncio Cluster client, and
resynchronisation pipelined per node."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from polling import until as _wait_for
from resilience_kit import CircuitBreaker, CircuitState, RedisStorage
from resilience_kit.breaker._redis.scripts import Script

OPEN = CircuitState.OPEN


async def _boom() -> None:
    raise ValueError("down")


class _Sent:
    """Counts the scripts the storage sends from the test's own thread (the event loop's),
    not the subscriber thread's."""

    def __init__(self, storage: RedisStorage) -> None:
        self.ops: list[str] = []
        self.thread = threading.get_ident()
        script = storage.script
        sent = self

        class Counting(Script):
            async def call_async(self, client, keys, args):
                if threading.get_ident() == sent.thread:
                    sent.ops.append(args[0])
                return await script.call_async(client, keys, args)

        storage.script = Counting(script.source)


def _breaker(storage: RedisStorage, name: str = "payments", **config) -> CircuitBreaker:
    breaker = CircuitBreaker(name, storage=storage, **config)
    breaker.unregister()
    return breaker


def test_an_async_breaker_sends_nothing_in_steady_state(redis_url) -> None:
    import redis.asyncio

    prefix = f"async-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        storage = RedisStorage(client, prefix=prefix)
        sent = _Sent(storage)
        breaker = _breaker(storage, failure_threshold=5)

        @breaker
        async def work() -> int:
            return 1

        @breaker
        async def broken() -> None:
            raise ValueError("down")

        try:
            assert await work() == 1  # the first call reads the shared state
            assert _wait_for(lambda: storage.listening)
            assert breaker._cell.clean  # the lock-free fast path, as for a sync client
            before = list(sent.ops)
            for _ in range(1000):
                assert await work() == 1
            assert sent.ops == before  # not one command for a thousand calls
            key = f"{{{prefix}:breaker:payments}}:state"
            with pytest.raises(ValueError, match="down"):
                await broken()  # the fast path's failure: in Redis when the call returns
            assert await client.hget(key, "f") == b"1"
            assert sent.ops == [*before, "record"]
        finally:
            storage.close()
            await client.aclose()

    asyncio.run(scenario())


def test_batched_async_successes_reach_redis_without_another_call(redis_url) -> None:
    import redis.asyncio

    prefix = f"async-flush-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        storage = RedisStorage(client, prefix=prefix, flush_interval=0.2)
        breaker = _breaker(storage, failure_rate=0.5, minimum_calls=1000)

        @breaker
        async def work() -> int:
            return 1

        try:
            for _ in range(30):
                await work()
            key = f"{{{prefix}:breaker:payments}}:window"

            async def calls() -> int:
                fields = await client.hgetall(key)
                return sum(int(v) for k, v in fields.items() if k.startswith(b"c"))

            for _ in range(500):  # up to 10 s
                if await calls() == 30:
                    break
                await asyncio.sleep(0.02)
            assert await calls() == 30  # the last batch sent by the subscriber thread
        finally:
            storage.close()
            await client.aclose()

    asyncio.run(scenario())


def test_an_asyncio_cluster_client_is_told_of_transitions(redis_cluster) -> None:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    prefix = f"async-cluster-{uuid.uuid4().hex[:8]}"
    config = {"failure_threshold": 2, "recovery_timeout": 60}

    async def scenario() -> float:
        clients = [
            RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.nodes])
            for _ in range(2)
        ]
        storages = [RedisStorage(client, prefix=prefix) for client in clients]
        first, second = (_breaker(storage, **config) for storage in storages)
        try:
            assert await second.call_async(asyncio.sleep, 0, "ok") == "ok"
            assert _wait_for(lambda: storages[1].listening)  # subscribed on a node
            for _ in range(2):
                with pytest.raises(ValueError, match="down"):
                    await first.call_async(_boom)
            opened = time.monotonic()
            assert first.state is OPEN
            # No call, no poll: the announcement reaches the other asyncio Cluster client.
            assert _wait_for(lambda: second._machine.state is OPEN, timeout=5)
            return time.monotonic() - opened
        finally:
            for storage in storages:
                storage.close()
            for client in clients:
                await client.aclose()

    took = asyncio.run(scenario())
    print(f"asyncio Cluster client saw OPEN after {took * 1000:.1f} ms")


def test_a_cluster_resync_is_one_pipeline_per_node(redis_cluster, monkeypatch) -> None:
    client = redis_cluster.client()
    prefix = f"resync-{uuid.uuid4().hex[:8]}"
    storage = RedisStorage(client, prefix=prefix, resync_interval=3600)
    breakers = [_breaker(storage, f"dep{index}") for index in range(300)]
    storage.close()
    pipelines: list[int] = []
    pipelined = Script._pipelined
    mine = threading.get_ident()  # not the subscriber thread's first resync, if still running

    def counting(self, server, calls):
        if threading.get_ident() == mine:
            pipelines.append(len(calls))
        return pipelined(self, server, calls)

    try:
        storage.resync(client)  # the first loads the script on every master (NOSCRIPT)
        monkeypatch.setattr(Script, "_pipelined", counting)
        storage.resync(client)
        assert len(pipelines) == 3  # one round trip per master, for 300 breakers
        assert sum(pipelines) == 300
        assert all(count > 0 for count in pipelines)
        assert all(breaker._cell.view is not None for breaker in breakers)
        assert not storage.guard.down
    finally:
        client.close()
