"""The real Redis goes back to an older version of a breaker's state, connections still up
(what a failover to a replica that missed the last writes leaves): every process follows the
stored state by its next resync, instead of keeping a view the store no longer has."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from polling import until
from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage


def _boom() -> None:
    raise ValueError("down")


def _processes(redis_url: str, prefix: str) -> list[CircuitBreaker]:
    made = []
    for _ in range(2):
        storage = RedisStorage(redis_url, prefix=prefix, resync_interval=0.2)
        breaker = CircuitBreaker("dep", failure_threshold=2, storage=storage)
        breaker.unregister()
        made.append(breaker)
    return made


def _admits(breaker: CircuitBreaker) -> bool:
    try:
        breaker.call(lambda: None)
    except CircuitOpenError:
        return False
    return True


def test_views_follow_a_store_gone_back_to_an_older_open_state(
    redis_url: str, redis_client: Any
) -> None:
    prefix = f"lost-{uuid.uuid4().hex[:8]}"
    key = "{" + prefix + ":breaker:dep}:state"
    watcher, actor = _processes(redis_url, prefix)
    try:
        assert _admits(watcher)
        for _ in range(2):
            with contextlib.suppress(ValueError):
                actor.call(_boom)
        assert until(lambda: watcher._machine.state is CircuitState.OPEN, 5)
        replica = redis_client.hgetall(key)  # OPEN: the replica misses the reset below
        actor.reset()
        assert until(lambda: watcher._machine.state is CircuitState.CLOSED, 5)
        redis_client.delete(key)
        redis_client.hset(key, mapping=replica)
        # No announcement: the subscriber's resync finds the store OPEN again.
        assert until(lambda: not _admits(watcher), 5)
        assert until(lambda: not _admits(actor), 5)
        assert watcher._machine.state is CircuitState.OPEN
    finally:
        for breaker in (watcher, actor):
            breaker.storage.close()  # type: ignore[attr-defined]


def test_views_follow_a_store_gone_back_to_an_older_closed_state(
    redis_url: str, redis_client: Any
) -> None:
    prefix = f"lost-{uuid.uuid4().hex[:8]}"
    key = "{" + prefix + ":breaker:dep}:state"
    watcher, actor = _processes(redis_url, prefix)
    try:
        assert _admits(watcher)
        with contextlib.suppress(ValueError):
            actor.call(_boom)
        replica = redis_client.hgetall(key)  # CLOSED with one failure
        with contextlib.suppress(ValueError):
            actor.call(_boom)
        assert until(lambda: watcher._machine.state is CircuitState.OPEN, 5)
        redis_client.delete(key)
        redis_client.hset(key, mapping=replica)
        # The store is CLOSED: no view may stay OPEN for the whole recovery timeout (60 s).
        assert until(lambda: _admits(watcher) and _admits(actor), 5)
    finally:
        for breaker in (watcher, actor):
            breaker.storage.close()  # type: ignore[attr-defined]
