"""Shared breaker state through a Sentinel-managed Redis: a private master, replica and
sentinel (the ``redis_sentinel`` fixture), with sync and asyncio clients, and a failover."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from polling import until as _wait_for
from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage

OPEN, CLOSED = CircuitState.OPEN, CircuitState.CLOSED


def _boom() -> None:
    raise ValueError("down")


async def _boom_async() -> None:
    raise ValueError("down")


def _sync_master(setup):
    from redis.sentinel import Sentinel

    sentinel = Sentinel(setup.sentinels, socket_timeout=0.5, socket_connect_timeout=0.5)
    return sentinel.master_for(setup.service, socket_timeout=0.5, socket_connect_timeout=0.5)


def _async_master(setup):
    """An asyncio master client and its Sentinel (close both)."""
    from redis.asyncio.sentinel import Sentinel

    sentinel = Sentinel(setup.sentinels, socket_timeout=0.5, socket_connect_timeout=0.5)
    client = sentinel.master_for(setup.service, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client, sentinel


def _breaker(storage: RedisStorage, **config) -> CircuitBreaker:
    breaker = CircuitBreaker("payments", storage=storage, **config)
    breaker.unregister()  # several "processes" share the name in this test
    return breaker


def test_sync_and_asyncio_processes_share_one_circuit_through_sentinel(redis_sentinel) -> None:
    prefix = f"sentinel-{uuid.uuid4().hex[:8]}"
    sync_storage = RedisStorage(_sync_master(redis_sentinel), prefix=prefix)
    config = {"failure_threshold": 3, "recovery_timeout": 60}
    first = _breaker(sync_storage, **config)

    async def scenario() -> None:
        client, sentinel = _async_master(redis_sentinel)
        async_storage = RedisStorage(client, prefix=prefix)
        second = _breaker(async_storage, **config)
        try:
            assert await second.call_async(asyncio.sleep, 0) is None  # reads the shared state
            assert _wait_for(lambda: async_storage.listening)  # through its own sentinel twin
            for _ in range(2):
                with pytest.raises(ValueError, match="down"):
                    first.call(_boom)
            with pytest.raises(ValueError, match="down"):
                await second.call_async(_boom_async)  # the third failure in a row, fleet-wide
            assert second.state is OPEN
            assert _wait_for(lambda: first._machine.state is OPEN)  # announced, no call
            with pytest.raises(CircuitOpenError):
                first.call(lambda: None)
            first.reset()
            assert _wait_for(lambda: second._machine.state is CLOSED)  # pushed to the async one
            assert await second.call_async(asyncio.sleep, 0, "ok") == "ok"
        finally:
            async_storage.close()
            await client.aclose()
            await sentinel.aclose()

    master = _sync_master(redis_sentinel)
    try:
        asyncio.run(scenario())
        assert master.hget(f"{{{prefix}:breaker:payments}}:state", "s") == b"CLOSED"
    finally:
        sync_storage.close()
        sync_storage.client.close()
        master.close()


def test_after_a_failover_the_breaker_kept_protecting_and_resynchronises(redis_sentinel) -> None:
    prefix = f"failover-{uuid.uuid4().hex[:8]}"
    config = {"failure_threshold": 3, "recovery_timeout": 60}
    storages = [RedisStorage(_sync_master(redis_sentinel), prefix=prefix) for _ in range(2)]
    first, second = (_breaker(storage, **config) for storage in storages)
    try:
        assert first.call(lambda: 1) == 1
        assert second.call(lambda: 2) == 2
        redis_sentinel.master.stop()  # killed; the sentinel promotes the replica in seconds
        # Meanwhile callers never see a store error: only their own failures, then rejections.
        seen = []
        for _ in range(6):
            try:
                first.call(_boom)
            except ValueError:
                seen.append("failed")
            except CircuitOpenError:
                seen.append("rejected")
        assert seen == ["failed"] * 3 + ["rejected"] * 3  # kept protecting throughout
        assert storages[0].guard.down  # decided on local state
        redis_sentinel.failover()  # until the replica is the master
        # Redis answers again (the new master): both resynchronise with the shared state.
        first.reset()
        assert _wait_for(lambda: not storages[0].guard.down, timeout=30)
        assert _wait_for(lambda: first._machine.state is CLOSED)
        for _ in range(3):
            with contextlib.suppress(ValueError):
                first.call(_boom)
        assert first.state is OPEN
        assert _wait_for(lambda: second._machine.state is OPEN, timeout=30)
        with pytest.raises(CircuitOpenError):
            second.call(lambda: None)
        promoted = _sync_master(redis_sentinel)
        try:
            assert promoted.connection_pool.get_master_address()[1] == redis_sentinel.replica.port
            assert promoted.hget(f"{{{prefix}:breaker:payments}}:state", "s") == b"OPEN"
        finally:
            promoted.close()
    finally:
        for storage in storages:
            storage.close()
            storage.client.close()
