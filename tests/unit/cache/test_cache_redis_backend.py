"""RedisBackend on fakeredis: one command per hit, generations, leases, batches, fail-open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from resilience_kit import CircuitState
from resilience_kit.cache import (
    MemoryBackend,
    RedisBackend,
    cache_stats,
    cached,
    invalidate_pattern,
    invalidate_prefix,
)
from resilience_kit.errors import ConfigurationError


class Counting:
    """Counts the commands a sync client sends."""

    def __init__(self, client: Any) -> None:
        self.commands: list[str] = []
        original = client.execute_command

        def execute(*args: Any, **options: Any) -> Any:
            self.commands.append(str(args[0]))
            return original(*args, **options)

        client.execute_command = execute


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def client(server: fakeredis.FakeServer) -> Iterator[redis.Redis]:
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture
def backend(client: redis.Redis) -> Iterator[RedisBackend]:
    backend = RedisBackend(client, namespace="t")
    yield backend
    backend.breaker.unregister()


def test_a_hit_is_one_command(client: redis.Redis, backend: RedisBackend) -> None:
    calls = []

    @cached("one-rtt", backend=backend)
    def get(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    get(1)
    counting = Counting(client)
    for _ in range(10):
        assert get(1) == {"n": 1}
    assert counting.commands == ["EVALSHA"] * 10
    assert calls == [1]


def test_keys_read_namespace_prefix_parts_digest(
    client: redis.Redis, backend: RedisBackend
) -> None:
    @cached("layout", backend=backend)
    def get(user: int, name: str) -> int:
        return user

    get(42, "a*b")
    keys = sorted(k.decode() for k in client.keys("*"))
    (key,) = [k for k in keys if not k.endswith("#lease")]
    assert key.startswith("t:{layout}:42:a%2Ab:")
    assert len(key.rsplit(":", 1)[1]) == 32


def test_prefix_invalidation_is_one_incr(client: redis.Redis, backend: RedisBackend) -> None:
    calls = []

    @cached("gen", backend=backend)
    def get(n: int) -> int:
        calls.append(n)
        return n

    get(1), get(2)
    counting = Counting(client)
    invalidate_prefix("gen")
    assert counting.commands in (["INCRBY"], ["INCR"])
    get(1), get(2)
    assert calls == [1, 2, 1, 2]


def test_pattern_invalidation_stays_in_namespace_and_prefix(
    client: redis.Redis, backend: RedisBackend
) -> None:
    @cached("pat-r", backend=backend)
    def get(user: str) -> str:
        return user

    for user in ("ann", "bob", "*", "a]"):
        get(user)
    client.set("t:{pat-r}:ann:not-an-entry", b"x")
    client.set("other:{pat-r}:ann:" + "0" * 32, b"x")
    assert invalidate_pattern("pat-r", "ann") == 1
    assert invalidate_pattern("pat-r", "%2A") == 1
    assert invalidate_pattern("pat-r", "*") == 2
    assert client.exists("t:{pat-r}:ann:not-an-entry", "other:{pat-r}:ann:" + "0" * 32) == 2


def test_entries_expire_in_redis_too(client: redis.Redis, backend: RedisBackend) -> None:
    @cached("ttl-r", ttl=30, stale_ttl=10, backend=backend)
    def get() -> int:
        return 1

    get()
    (key,) = [k for k in client.keys("t:{ttl-r}:*") if not k.endswith(b"#gen")]
    assert 39_000 < client.pttl(key) <= 40_000


def test_an_outage_is_a_miss_then_the_breaker_stops_calling(backend: RedisBackend) -> None:
    calls = []

    class Down:
        def execute_command(self, *args: Any) -> Any:
            calls.append(args[0])
            raise redis.ConnectionError("down")

    backend._clients.client = Down()

    @cached("outage", backend=backend)
    def get(n: int) -> int:
        return n * 2

    assert [get(1) for _ in range(10)] == [2] * 10
    assert len(calls) == 3  # the breaker opened after three failures
    assert backend.breaker.state is CircuitState.OPEN
    assert cache_stats().prefixes["outage"].errors == 10


def test_a_corrupt_redis_entry_is_a_counted_miss(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("corrupt-r", backend=backend)
    def get() -> int:
        calls.append(1)
        return 1

    get()
    for key in client.keys("t:{corrupt-r}:*"):
        if not key.endswith(b"#gen"):
            client.set(key, b"RK\x01\x01\x00garbage")
    assert get() == 1
    assert len(calls) == 2
    assert cache_stats().prefixes["corrupt-r"].errors == 1


def test_a_corrupt_entry_is_replaced_by_the_next_computation(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("corrupt-fill", backend=backend)
    def get() -> int:
        calls.append(1)
        return 1

    get()
    (key,) = [k for k in client.keys("t:{corrupt-fill}:*") if not k.endswith(b"#gen")]
    for junk in (b"", b"RK", b"not ours at all, but long enough to be a header" * 2):
        client.set(key, junk)
        assert get() == 1  # a counted miss that writes a good entry over the junk
        assert get() == 1  # a hit
    assert len(calls) == 4
    assert cache_stats().prefixes["corrupt-fill"].errors == 3


def test_a_truncated_entry_is_a_counted_miss_never_a_shorter_value(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("truncated-r", backend=backend)
    def get() -> int:
        calls.append(1)
        return 12345  # JSON "12345": its first four bytes decode too, as 1234

    assert get() == 12345
    (key,) = [k for k in client.keys("t:{truncated-r}:*") if not k.endswith(b"#gen")]
    stored = client.get(key)
    assert stored is not None
    client.set(key, stored[:-1])
    assert get() == 12345  # a miss: computed again, never 1234
    assert len(calls) == 2
    assert cache_stats().prefixes["truncated-r"].errors == 1


def test_a_flipped_digit_in_an_uncompressed_entry_is_a_counted_miss_never_another_value(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("flipped-r", backend=backend)
    def get() -> int:
        calls.append(1)
        return 12345  # JSON "12345": "12845" decodes too, as another number

    assert get() == 12345
    (key,) = [k for k in client.keys("t:{flipped-r}:*") if not k.endswith(b"#gen")]
    stored = client.get(key)
    assert stored is not None
    assert stored.endswith(b"12345")
    client.set(key, stored[:-3] + b"8" + stored[-2:])
    assert get() == 12345  # a miss: computed again, never 12845
    assert get() == 12345  # and the recomputed entry is a hit
    assert len(calls) == 2
    assert cache_stats().prefixes["flipped-r"].errors == 1


def test_an_entry_of_the_previous_format_version_is_a_miss_recomputed_once(
    client: redis.Redis, backend: RedisBackend
) -> None:
    import struct

    from resilience_kit.cache import JsonSerializer
    from resilience_kit.cache._frame import unpack

    calls = []

    @cached("old-format", backend=backend)
    def get() -> int:
        calls.append(1)
        return 7

    get()
    (key,) = [k for k in client.keys("t:{old-format}:*") if not k.endswith(b"#gen")]
    _, _, fresh, stale, _ = unpack(client.get(key), JsonSerializer())
    # The same entry in version 2's layout (no checksum).
    old = struct.pack(">2sBBBqddfI", b"RK", 2, 1, 0, 0, fresh, stale, 0.0, 1) + b"7"
    client.set(key, old)
    assert get() == 7
    assert get() == 7
    assert len(calls) == 2
    assert cache_stats().prefixes["old-format"].errors == 1


def test_the_read_script_sends_an_entry_only_for_the_current_generation(
    client: redis.Redis, backend: RedisBackend
) -> None:
    @cached("gen-reply", backend=backend)
    def get(n: int) -> int:
        return n

    get(1)
    key = backend.full_key(_key("gen-reply", 1))
    raw, generation = backend.get("gen-reply", _key("gen-reply", 1))
    assert generation == 0
    assert raw == client.get(key)
    client.incr(backend.generation_key("gen-reply"))
    raw, generation = backend.get("gen-reply", _key("gen-reply", 1))
    assert generation == 1
    assert raw == client.get(key)  # an older generation's entry comes with the generation
    assert backend.get("gen-reply", _key("gen-reply", 2)) == (None, 1)


def test_negative_and_large_generations_still_cache(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("gen-odd", backend=backend)
    def get() -> int:
        calls.append(1)
        return 5

    for generation in (-3, 2**40 + 7, 0):
        client.set(backend.generation_key("gen-odd"), generation)
        assert get() == 5
        assert get() == 5
    assert len(calls) == 3  # one computation per generation, then hits


def test_a_server_that_lost_the_script_loads_it_again(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("noscript", backend=backend)
    def get() -> int:
        calls.append(1)
        return 3

    get()
    client.script_flush()  # a restart, a failover to a node that never saw it
    counting = Counting(client)
    assert get() == 3
    assert get() == 3
    assert counting.commands == ["EVALSHA", "EVAL", "EVALSHA"]
    assert calls == [1]
    assert cache_stats().prefixes["noscript"].errors == 0
    assert backend.breaker.state is CircuitState.CLOSED


async def test_an_async_client_reloads_the_script_too(server: fakeredis.FakeServer) -> None:
    client = fakeredis.FakeAsyncRedis(server=server)
    backend = RedisBackend(client, namespace="t")
    calls = []

    @cached("anoscript", backend=backend)
    async def get() -> int:
        calls.append(1)
        return 4

    assert await get() == 4
    await client.script_flush()
    assert await get() == 4
    assert calls == [1]
    assert cache_stats().prefixes["anoscript"].errors == 0
    backend.breaker.unregister()
    await client.aclose()


def _key(prefix: str, *args: Any) -> str:
    from resilience_kit.cache._decorator import _lookup

    key = _lookup(prefix).spec.keys.build(args, {})
    assert key is not None
    return key


async def test_an_async_function_on_a_sync_client_releases_its_lease_with_the_write(
    client: redis.Redis,
) -> None:
    backend = RedisBackend(client, namespace="t", lock_timeout=30, lock_wait=30)
    calls = []

    @cached("async-on-sync", backend=backend)
    async def get(n: int) -> int:
        calls.append(n)
        return n

    assert await get(1) == 1
    lease = backend.full_key(_key("async-on-sync", 1)) + "#lease"
    assert client.get(lease) is None  # stored by the fenced write, which frees the lease
    await get.invalidate(1)
    assert await get(1) == 1  # computed at once: no lease of its own to wait out
    assert calls == [1, 1]
    assert cache_stats().prefixes["async-on-sync"].lock_waits == 0
    backend.breaker.unregister()


def test_a_lease_held_elsewhere_makes_a_caller_wait_for_its_value(
    client: redis.Redis, backend: RedisBackend
) -> None:
    other = RedisBackend(client, namespace="t", lock_wait=2)
    calls = []

    @cached("lease", backend=other)
    def get() -> int:
        calls.append(1)
        return 7

    from resilience_kit.cache._decorator import _lookup

    cache_key = _lookup("lease").spec.keys.build((), {})
    assert cache_key is not None
    token = backend.acquire("lease", cache_key)  # another process holds the lease
    assert token is not None

    import threading

    def finish() -> None:
        import time

        time.sleep(0.2)
        from resilience_kit.cache._frame import Entry, pack
        from resilience_kit.cache.serializers import JsonSerializer

        s = JsonSerializer()
        now = __import__("time").time()
        stored = pack(Entry(9, 0, now + 60, now + 60, 0.0), s, s.dumps(9), None)
        assert backend.set_fenced("lease", cache_key, stored, 60, token)

    threading.Thread(target=finish).start()
    assert get() == 9  # the holder's value, not a computation of its own
    assert calls == []
    assert client.get(backend.full_key(cache_key) + "#lease") is None
    other.breaker.unregister()


def test_a_lease_held_elsewhere_makes_a_caller_with_a_stale_value_serve_it_at_once(
    client: redis.Redis, backend: RedisBackend
) -> None:
    from resilience_kit.testing import FakeClock

    clock = FakeClock()
    other = RedisBackend(client, namespace="t", lock_wait=5)
    calls = []

    @cached("lease-stale", ttl=10, stale_ttl=100, backend=other, clock=clock)
    def get() -> int:
        calls.append(1)
        return len(calls)

    assert get() == 1
    clock.advance(11)  # stale now
    token = backend.acquire("lease-stale", _key("lease-stale"))  # another process refreshes
    assert token is not None
    started = time.monotonic()
    assert get() == 1  # the stale value, without waiting for the holder or computing
    assert time.monotonic() - started < 1
    assert calls == [1]
    stats = cache_stats().prefixes["lease-stale"]
    assert (stats.stale, stats.lock_waits) == (1, 0)
    other.breaker.unregister()


def test_a_full_connection_pool_makes_callers_wait_and_never_opens_the_breaker(
    server: fakeredis.FakeServer,
) -> None:
    from redis.exceptions import MaxConnectionsError

    client = fakeredis.FakeRedis(server=server)
    full = [0]  # commands refused before the pool has a connection again
    original = client.execute_command

    def execute(*args: Any, **options: Any) -> Any:
        if full[0]:
            full[0] -= 1
            raise MaxConnectionsError("Too many connections")
        return original(*args, **options)

    client.execute_command = execute  # type: ignore[method-assign]
    backend = RedisBackend(client, namespace="t", socket_timeout=0.2)
    calls = []

    @cached("pool", backend=backend)
    def get() -> int:
        calls.append(1)
        return 1

    assert get() == 1
    full[0] = 3  # a burst holds every connection for a moment: the hit waits for one
    assert get() == 1
    assert (len(calls), cache_stats().prefixes["pool"].errors) == (1, 0)
    full[0] = 10**9  # never a free connection: a miss after the wait, but Redis is not down
    for _ in range(5):
        assert get() == 1
    assert (len(calls), cache_stats().prefixes["pool"].errors) == (6, 5)
    assert backend.breaker.state is CircuitState.CLOSED
    backend.breaker.unregister()


def test_a_fenced_write_from_an_expired_holder_is_dropped(
    client: redis.Redis, backend: RedisBackend
) -> None:
    first = backend.acquire("fence", "{fence}:k")
    assert first is not None
    client.delete(backend.full_key("{fence}:k") + "#lease")  # the lease expired
    second = backend.acquire("fence", "{fence}:k")
    assert second is not None
    assert not backend.set_fenced("fence", "{fence}:k", b"old", 60, first)
    assert client.get(backend.full_key("{fence}:k")) is None
    assert backend.set_fenced("fence", "{fence}:k", b"new", 60, second)
    assert client.get(backend.full_key("{fence}:k")) == b"new"


def test_get_many_and_set_many_share_entries_with_the_decorator(
    client: redis.Redis, backend: RedisBackend
) -> None:
    calls = []

    @cached("batch", backend=backend, key=str)
    def get(user: int) -> dict[str, int]:
        calls.append(user)
        return {"user": user}

    backend.set_many("batch", {"1": {"user": 1}, "2": {"user": 2}}, ttl=60)
    assert get(1) == {"user": 1}
    assert calls == []
    get(3)
    counting = Counting(client)
    assert backend.get_many("batch", ["1", "2", "3", "4"]) == {
        "1": {"user": 1},
        "2": {"user": 2},
        "3": {"user": 3},
    }
    assert counting.commands == ["MGET"]
    with pytest.raises(TypeError):
        backend.set_many("batch", {"5": object()}, ttl=60)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_get_many_leaves_out_entries_past_their_ttl_on_every_backend(
    kind: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resilience_kit.testing import FakeClock, use_clock

    backend: MemoryBackend | RedisBackend = (
        MemoryBackend() if kind == "memory" else RedisBackend(client, namespace="t")
    )
    calls = []
    with use_clock(FakeClock()) as clock:

        @cached("batch-ttl", ttl=10, stale_ttl=60, backend=backend, key=str)
        def get(user: int) -> dict[str, int]:
            calls.append(user)
            return {"user": user}

        get(1)
        backend.set_many("batch-ttl", {"2": {"user": 2}}, ttl=10)
        both = {"1": {"user": 1}, "2": {"user": 2}}
        assert backend.get_many("batch-ttl", ["1", "2", "3"]) == both
        assert asyncio.run(backend.aget_many("batch-ttl", ["1", "2", "3"])) == both
        clock.advance(9.5)
        assert backend.get_many("batch-ttl", ["1", "2"]) == both  # still fresh
        clock.advance(1)
        # Past the ttl: misses, though get() may still serve "1" while one caller refreshes it.
        assert backend.get_many("batch-ttl", ["1", "2"]) == {}
        assert asyncio.run(backend.aget_many("batch-ttl", ["1", "2"])) == {}
        assert get(1) == {"user": 1}  # refreshed
        assert calls == [1, 1]
        assert backend.get_many("batch-ttl", ["1", "2"]) == {"1": {"user": 1}}
        asyncio.run(backend.aset_many("batch-ttl", {"2": {"user": 22}}, ttl=10))
        assert get(2) == {"user": 22}  # a hit on what set_many wrote
        invalidate_prefix("batch-ttl")
        assert backend.get_many("batch-ttl", ["1", "2"]) == {}  # an older generation
        with pytest.raises(TypeError):
            backend.set_many("batch-ttl", {"3": {"user": 3}, "4": object()}, ttl=10)
        assert backend.get_many("batch-ttl", ["3"]) == {}  # nothing of that batch stored
    assert calls == [1, 1]
    assert cache_stats().prefixes["batch-ttl"].errors == 0
    if isinstance(backend, RedisBackend):  # fakeredis has no INFO; ainfo() must call info()
        monkeypatch.setattr(backend, "info", lambda: {"backend": "redis"})
    assert asyncio.run(backend.ainfo())["backend"] == kind
    if isinstance(backend, RedisBackend):
        backend.breaker.unregister()


def test_bad_arguments_are_configuration_errors(client: redis.Redis) -> None:
    with pytest.raises(ConfigurationError, match="client_or_url"):
        RedisBackend("http://nope")
    with pytest.raises(ConfigurationError, match="client_or_url"):
        RedisBackend(object())
    with pytest.raises(ConfigurationError, match="namespace"):
        RedisBackend(client, namespace="a*")
    with pytest.raises(ConfigurationError, match="lock_timeout"):
        RedisBackend(client, lock_timeout=0)


def test_a_client_that_decodes_responses_is_refused_at_construction() -> None:
    # Entries are bytes: such a client fails every read (UnicodeDecodeError), so the cache
    # would never hit and its breaker would open; say so at once instead.
    for client in (
        fakeredis.FakeRedis(decode_responses=True),
        fakeredis.FakeAsyncRedis(decode_responses=True),
    ):
        with pytest.raises(ConfigurationError, match="decode_responses") as raised:
            RedisBackend(client)
        assert raised.value.parameter == "client_or_url"
    for url in (
        "redis://127.0.0.1:6379/0?decode_responses=True",
        "redis://127.0.0.1:6379/0?socket_keepalive=1&decode_responses=yes",
        "unix:///tmp/redis.sock?decode_responses=1",
    ):
        with pytest.raises(ConfigurationError, match="decode_responses"):
            RedisBackend(url)
    # redis-py reads the option as a str, so even "False" decodes: refused too.
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisBackend("redis://127.0.0.1:6379/0?decode_responses=False")
    RedisBackend("redis://127.0.0.1:6379/0?socket_keepalive=1").breaker.unregister()


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:notaport/0", "redis://127.0.0.1:6379/0?socket_timeout=soon"]
)
def test_a_url_redis_py_cannot_read_is_refused_at_construction(url: str) -> None:
    # Not at the first call, where it would be one more backend error, taken as a miss.
    with pytest.raises(ConfigurationError, match="client_or_url") as raised:
        RedisBackend(url)
    assert raised.value.value == url


async def test_async_client_hits_are_one_command(server: fakeredis.FakeServer) -> None:
    client = fakeredis.FakeAsyncRedis(server=server)
    backend = RedisBackend(client, namespace="t")
    calls = []

    @cached("async-r", backend=backend)
    async def get(n: int) -> tuple[int, int]:
        calls.append(n)
        await asyncio.sleep(0)
        return (n, n)

    assert await get(1) == (1, 1)
    sent: list[str] = []
    original = client.execute_command

    async def execute(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await original(*args, **options)

    client.execute_command = execute  # type: ignore[method-assign]
    assert await get(1) == (1, 1)
    assert sent == ["EVALSHA"]
    await get.invalidate(1)
    await invalidate_prefix("async-r")
    assert await get(1) == (1, 1)
    assert calls == [1, 1]
    assert await invalidate_pattern("async-r", "*") == 1
    assert await backend.aget_many("async-r", []) == {}
    with pytest.raises(ConfigurationError, match="asyncio client"):

        @cached("async-only", backend=backend)
        def sync_fn() -> int:
            return 1

    backend.breaker.unregister()
    await client.aclose()
