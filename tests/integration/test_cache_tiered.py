"""Two tiers on real Redis: local hits send nothing; invalidations reach every process fast."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from resilience_kit.cache import RedisBackend, TieredBackend, cached, invalidate_prefix
from resilience_kit.cache._decorator import _lookup

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
    assert get_one(1) == "v1:1"
    assert get_two(1) == "v1:1"  # from Redis, then kept in two's L1
    assert calls == ["v1"]
    key = _lookup(prefix).spec.keys.build((1,), {})
    assert key is not None
    wait_for(lambda: key in one.local._data and key in two.local._data)

    watcher = redis.Redis.from_url(one.remote._url or "")
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
