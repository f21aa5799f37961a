"""Health checks against the real PostgreSQL and Redis, a stopped Redis and a silent server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from resilience_kit.health import (
    HealthChecker,
    HealthStatus,
    check_redis,
    check_sqlalchemy,
)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on a free loopback port that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    listener.close()


async def test_real_postgresql_and_redis_sync_and_async(database_url: str, redis_url: str) -> None:
    import redis
    import redis.asyncio
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = sa.create_engine(database_url, pool_size=3)
    async_engine = create_async_engine(database_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    async_client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2)
    try:
        checker = HealthChecker(
            {
                "postgres": check_sqlalchemy(engine),
                "postgres_async": check_sqlalchemy(async_engine),
                "redis": check_redis(client),
                "redis_async": check_redis(async_client),
            }
        )
        report = await checker.check_all()
        assert report.status is HealthStatus.HEALTHY, report.to_dict()
        details = report.checks["postgres"].details
        assert details["pool"] == "QueuePool"
        assert details["size"] == 3
        assert details["checkedout"] == 0, "the check gives its connection back"
        assert report.checks["postgres_async"].details["checkedin"] >= 1
    finally:
        engine.dispose()
        await async_engine.dispose()
        client.close()
        await async_client.aclose()


async def test_a_stopped_redis_is_unhealthy_at_once(private_redis: object) -> None:
    import redis
    import redis.asyncio

    url = private_redis.url  # type: ignore[attr-defined]
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    async_client = redis.asyncio.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    checker = HealthChecker(
        {"redis": check_redis(client), "redis_async": check_redis(async_client)},
        timeout=3,
        cache_ttl=0,
    )
    try:
        assert (await checker.check_all()).status is HealthStatus.HEALTHY
        private_redis.stop()  # type: ignore[attr-defined]
        started = time.perf_counter()
        report = await checker.check_all()
        elapsed = time.perf_counter() - started
        assert report.status is HealthStatus.UNHEALTHY
        for name in ("redis", "redis_async"):
            assert report.checks[name].status is HealthStatus.UNHEALTHY
            assert "ConnectionError" in report.checks[name].message
        assert elapsed < 1.5, "a refused connection fails fast, not at the timeout"
        private_redis.start()  # type: ignore[attr-defined]
        assert (await checker.check_all()).status is HealthStatus.HEALTHY
    finally:
        client.close()
        await async_client.aclose()


async def test_a_silent_server_times_out_on_time_and_the_others_finish_at_once(
    silent_server: int, database_url: str, redis_url: str
) -> None:
    import redis
    import redis.asyncio
    import sqlalchemy as sa

    # Clients with no socket timeout of their own: only the checker's timeout can end them.
    silent_sync = redis.Redis(host="127.0.0.1", port=silent_server)
    silent_async = redis.asyncio.Redis(host="127.0.0.1", port=silent_server)
    engine = sa.create_engine(database_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    checker = HealthChecker(
        {
            "silent": check_redis(silent_sync),
            "silent_async": check_redis(silent_async),
            "postgres": check_sqlalchemy(engine),
            "redis": check_redis(client),
        },
        timeout=5,
        timeouts={"silent": 0.5, "silent_async": 0.5},
        critical=["postgres", "redis"],
        cache_ttl=0,
    )
    try:
        started = time.perf_counter()
        report = await checker.check_all()
        elapsed = time.perf_counter() - started
        assert 0.5 <= elapsed < 1.5
        for name in ("silent", "silent_async"):
            assert report.checks[name].status is HealthStatus.UNHEALTHY
            assert report.checks[name].message == "timed out after 0.5s"
        assert report.checks["postgres"].healthy
        assert report.checks["redis"].healthy
        assert report.checks["postgres"].response_time_ms < 400
        assert report.checks["redis"].response_time_ms < 400
        assert report.status is HealthStatus.DEGRADED, "the silent checks are not critical"
        assert report.http_status == 200
        ready = await checker.readiness()
        assert set(ready.checks) == {"postgres", "redis"}
        assert ready.status is HealthStatus.HEALTHY
    finally:
        engine.dispose()
        client.close()
        await silent_async.aclose()
