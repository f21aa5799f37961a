"""Retrying through real outages: a Redis server restart and a PostgreSQL backend killed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from redis.backoff import NoBackoff
from redis.retry import Retry

from resilience_kit import DATABASE, REDIS, RetryStats, reset_retry_stats, retry, retry_stats


@pytest.fixture(autouse=True)
def _fresh_stats() -> None:
    reset_retry_stats()


def test_redis_policy_retries_through_a_server_restart(private_redis: Any) -> None:
    # The client must not retry on its own: the policy is what is being tested.
    client = redis.Redis.from_url(
        private_redis.url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    client.set("greeting", "before")
    policy = REDIS.replace(
        name="redis-restart", attempts=40, min_wait=0.1, max_wait=0.2, on_exhausted="raise"
    )

    @retry(policy)
    def write_and_read(value: str) -> bytes | None:
        client.set("greeting", value)
        return client.get("greeting")  # type: ignore[return-value]

    private_redis.stop()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    restarter = threading.Thread(target=lambda: (time.sleep(0.5), private_redis.start()))
    restarter.start()
    try:
        assert write_and_read("after") == b"after"
    finally:
        restarter.join(timeout=30)
        client.close()
    stats = retry_stats()["redis-restart"]
    assert stats.calls == 1
    assert stats.retries >= 1
    assert stats.successes_after_retry == 1
    assert stats.exhausted == 0
    assert stats.attempts == stats.retries + 1


def test_redis_policy_returns_none_while_the_server_stays_down(private_redis: Any) -> None:
    client = redis.Redis.from_url(
        private_redis.url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    private_redis.stop()

    @retry(REDIS.replace(name="redis-down", min_wait=0.01, max_wait=0.02))
    def read() -> bytes | None:
        return client.get("anything")  # type: ignore[return-value]

    assert read() is None
    assert retry_stats()["redis-down"] == RetryStats(
        calls=1, attempts=3, retries=2, successes_after_retry=0, exhausted=1
    )
    client.close()


def test_database_policy_retries_a_killed_backend_on_a_fresh_connection(database_url: str) -> None:
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0)
    admin = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    pids: list[int] = []

    @retry(DATABASE.replace(name="db-kill", min_wait=0.05, max_wait=0.1, multiplier=0.05))
    def unit_of_work() -> int:
        with engine.begin() as connection:
            pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            pids.append(pid)
            if len(pids) == 1:
                # A second session kills this one between two statements of its transaction.
                with admin.connect() as other:
                    assert other.execute(
                        sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                    ).scalar_one()
            return int(connection.execute(sa.text("SELECT 40 + 2")).scalar_one())

    try:
        assert unit_of_work() == 42
    finally:
        engine.dispose()
        admin.dispose()
    assert len(pids) == 2
    assert pids[0] != pids[1]  # the retry ran on a new backend
    assert retry_stats()["db-kill"] == RetryStats(
        calls=1, attempts=2, retries=1, successes_after_retry=1, exhausted=0
    )


def test_database_policy_does_not_retry_an_integrity_error(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    calls = 0

    @retry(DATABASE.replace(name="db-integrity", min_wait=0.01, max_wait=0.01))
    def insert_twice() -> None:
        nonlocal calls
        calls += 1
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TEMP TABLE rk_unique (id int PRIMARY KEY)"))
            connection.execute(sa.text("INSERT INTO rk_unique VALUES (1), (1)"))

    try:
        with pytest.raises(sa.exc.IntegrityError):
            insert_twice()
    finally:
        engine.dispose()
    assert calls == 1
