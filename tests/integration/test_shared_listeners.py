"""Listeners of a shared breaker outside the name registry, on the real Redis.

A breaker taken out of the registry (``unregister()``, as test fixtures do) still uses its
storage: transitions another process makes reach its listeners through the real pub/sub, and
the storage's health edges reach them when a redis-server of the test's own dies and returns.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from doubles import Heard
from polling import until
from resilience_kit import CircuitBreaker, CircuitState, RedisStorage


def _boom() -> None:
    raise ValueError("down")


def test_an_unregistered_breaker_hears_another_process_open_and_reset(
    redis_url: str, redis_client: Any
) -> None:
    prefix = f"listen-{uuid.uuid4().hex[:8]}"
    heard = Heard()
    mine, theirs = RedisStorage(redis_url, prefix=prefix), RedisStorage(redis_url, prefix=prefix)
    watcher = CircuitBreaker("dep", failure_threshold=1, storage=mine, listeners=[heard])
    watcher.unregister()
    elsewhere = CircuitBreaker("dep", failure_threshold=1, storage=theirs)
    try:
        watcher.call(lambda: None)  # reads the shared state: it is CLOSED
        assert until(lambda: mine.listening and theirs.listening)
        with contextlib.suppress(ValueError):
            elsewhere.call(_boom)
        assert until(lambda: len(heard.events) == 1, 5)
        assert heard.events == ["CLOSED->OPEN: shared state changed in Redis"]
        assert watcher._machine.state is CircuitState.OPEN
        elsewhere.reset()
        assert until(lambda: len(heard.events) == 2, 5)
        assert heard.events[1] == "OPEN->CLOSED: shared state changed in Redis"
    finally:
        elsewhere.unregister()
        mine.close()
        theirs.close()


def test_an_unregistered_breaker_hears_its_redis_die_and_return(private_redis) -> None:
    heard = Heard()
    storage = RedisStorage(private_redis.url, prefix=f"edges-{uuid.uuid4().hex[:8]}")
    breaker = CircuitBreaker("dep", storage=storage, listeners=[heard])
    breaker.unregister()
    try:
        breaker.call(lambda: None)
        assert until(lambda: storage.listening, 5)
        private_redis.stop()
        assert until(lambda: heard.events == ["degraded"], 5)
        private_redis.start()
        assert until(lambda: heard.events == ["degraded", "recovered"], 10)
    finally:
        storage.close()
