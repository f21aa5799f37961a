"""@cached: hits and misses, what is stored, invalidation, statistics, time, failures."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from resilience_kit.cache import (
    MemoryBackend,
    cache_stats,
    cached,
    invalidate_cache,
    invalidate_pattern,
    invalidate_prefix,
    key_part,
)
from resilience_kit.errors import ConfigurationError
from resilience_kit.testing import FakeClock, use_clock


class Counted:
    """A function that counts its calls and returns a fresh dict each time."""

    def __init__(self, result: Any = "from-arg") -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.result = result

    def __call__(self, *args: Any) -> Any:
        self.calls.append(args)
        return {"args": list(args)} if self.result == "from-arg" else self.result


def test_a_hit_skips_the_function_and_a_new_argument_misses() -> None:
    work = Counted()

    @cached("users", ttl=60)
    def get(user_id: int) -> Any:
        return work(user_id)

    assert get(1) == {"args": [1]}
    assert get(1) == {"args": [1]}
    assert get(user_id=1) == {"args": [1]}
    assert get(2) == {"args": [2]}
    assert work.calls == [(1,), (2,)]
    stats = cache_stats().prefixes["users"]
    assert (stats.hits, stats.misses, stats.hit_rate) == (2, 2, 0.5)


async def test_async_functions_are_cached_and_invalidated_with_await() -> None:
    work = Counted()

    @cached("async-users", ttl=60)
    async def get(user_id: int) -> Any:
        await asyncio.sleep(0)
        return work(user_id)

    assert await get(1) == await get(1)
    assert len(work.calls) == 1
    await get.invalidate(1)
    await get(1)
    await invalidate_cache("async-users", 1)
    await get(1)
    assert len(work.calls) == 3


def test_async_invalidation_on_the_memory_backend_runs_under_asyncio_run() -> None:
    work = Counted()

    @cached("async-run", ttl=60)
    async def get(user_id: int) -> Any:
        return work(user_id)

    class Repo:
        @cached("async-run-method", ttl=60)
        async def find(self, item: int) -> Any:
            return work("method", item)

    def cached_then_invalidated(invalidation: Any) -> None:
        asyncio.run(get(1))
        asyncio.run(Repo().find(1))
        calls = len(work.calls)
        asyncio.run(get(1))
        asyncio.run(Repo().find(1))
        assert len(work.calls) == calls  # hits
        result = invalidation()
        assert asyncio.iscoroutine(result)
        assert asyncio.run(result) in (None, 1, 2)
        asyncio.run(get(1))
        asyncio.run(Repo().find(1))
        assert len(work.calls) > calls  # computed again

    cached_then_invalidated(lambda: get.invalidate(1))
    cached_then_invalidated(lambda: Repo().find.invalidate(Repo(), 1))
    cached_then_invalidated(lambda: invalidate_cache("async-run", 1))
    cached_then_invalidated(lambda: invalidate_prefix("async-run"))
    cached_then_invalidated(lambda: invalidate_pattern("async-run", "1"))
    assert asyncio.run(MemoryBackend().ainfo())["backend"] == "memory"


async def test_async_invalidation_on_the_memory_backend_can_be_a_task() -> None:
    work = Counted()

    @cached("async-task", ttl=60)
    async def get(user_id: int) -> Any:
        return work(user_id)

    await get(1)
    await asyncio.create_task(get.invalidate(1))
    await asyncio.gather(invalidate_cache("async-task", 1), invalidate_prefix("async-task"))
    await get(1)
    assert len(work.calls) == 2


def test_methods_share_entries_across_instances_by_default() -> None:
    work = Counted()

    class Repo:
        @cached("repo", ttl=60)
        def find(self, item: int) -> Any:
            return work(item)

    assert Repo().find(3) == Repo().find(3)
    assert len(work.calls) == 1
    Repo().find.invalidate(Repo(), 3)
    Repo().find(3)
    assert len(work.calls) == 2


def test_none_is_not_cached_unless_asked() -> None:
    plain, kept = Counted(None), Counted(None)

    @cached("none-plain")
    def a() -> Any:
        return plain()

    @cached("none-kept", cache_none=True)
    def b() -> Any:
        return kept()

    a(), a(), b(), b()
    assert (len(plain.calls), len(kept.calls)) == (2, 1)


def test_condition_decides_what_is_stored() -> None:
    work = Counted()

    @cached("cond", condition=lambda result: result["args"][0] > 0)
    def get(n: int) -> Any:
        return work(n)

    get(0), get(0), get(1), get(1)
    assert work.calls == [(0,), (0,), (1,)]


def test_an_unencodable_result_raises_naming_function_and_type_and_stores_nothing(
    fresh_cache: MemoryBackend,
) -> None:
    @cached("bad-result")
    def make() -> object:
        return object()

    with pytest.raises(TypeError, match=r"make\(\) returned a builtins.object"):
        make()
    assert fresh_cache.size() == 0


def test_an_unencodable_argument_raises_naming_the_parameter() -> None:
    @cached("bad-arg")
    def get(conn: object) -> int:
        return 1

    with pytest.raises(TypeError, match="parameter 'conn'"):
        get(object())


def test_wrong_arguments_reach_the_function_itself() -> None:
    @cached("wrong-args")
    def get(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        get()  # type: ignore[call-arg]


def test_invalidate_prefix_is_per_prefix_and_catches_in_flight_results() -> None:
    a_work, b_work = Counted(), Counted()

    @cached("inv-a")
    def a(n: int) -> Any:
        return a_work(n)

    @cached("inv-b")
    def b(n: int) -> Any:
        return b_work(n)

    a(1), a(2), b(1)
    invalidate_prefix("inv-a")
    a(1), a(2), b(1)
    assert len(a_work.calls) == 4
    assert len(b_work.calls) == 1


def test_invalidate_prefix_during_a_computation_keeps_its_result_out() -> None:
    calls = []

    @cached("inflight")
    def slow(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            invalidate_prefix("inflight")  # lands while the first computation runs
        return len(calls)

    assert slow(1) == 1
    assert slow(1) == 2  # the first result was written under the old generation
    assert slow(1) == 2


def test_invalidate_pattern_matches_inside_its_prefix_only() -> None:
    work, other = Counted(), Counted()

    @cached("pat")
    def get(user: str, page: int) -> Any:
        return work(user, page)

    @cached("pat-other")
    def get_other(user: str, page: int) -> Any:
        return other(user, page)

    for user in ("ann", "bob", "a*", "a:b"):
        get(user, 1)
        get(user, 2)
        get_other(user, 1)
    assert invalidate_pattern("pat", "ann:*") == 2
    assert invalidate_pattern("pat", key_part("a*") + ":1") == 1
    assert invalidate_pattern("pat", "*:2") == 3
    assert invalidate_pattern("pat", key_part("a:b") + ":*") == 1
    assert invalidate_pattern("pat", "*") == 1  # what is left: bob:1
    get_other("ann", 1)
    assert len(other.calls) == 4


def test_unknown_prefixes_and_duplicate_prefixes_are_errors() -> None:
    with pytest.raises(LookupError, match="no live"):
        invalidate_prefix("never-used")

    @cached("dup")
    def first() -> int:
        return 1

    with pytest.raises(ConfigurationError, match="already used by"):

        @cached("dup")
        def second() -> int:
            return 2


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": -1}, "ttl"),
        ({"stale_ttl": -1}, "stale_ttl"),
        ({"ttl_jitter": 1}, "ttl_jitter"),
        ({"early_refresh": 0}, "early_refresh"),
        ({"serializer": object()}, "serializer"),
        ({"backend": object()}, "backend"),
        ({"condition": 5}, "condition"),
        ({"cache_none": "no"}, "cache_none"),  # truthy: would cache None
        ({"lock": "no"}, "lock"),
        ({"include_self": 1}, "include_self"),
        ({"clock": 5}, "clock"),
        ({"exclude": [5]}, "exclude"),
        ({"exclude": 5}, "exclude"),
    ],
)
def test_bad_settings_fail_at_decoration(options: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigurationError, match=parameter):
        cached("bad-settings", **options)


def test_generators_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="generator"):

        @cached("gen")
        def numbers() -> Any:
            yield 1


def test_ttl_follows_the_librarys_clock() -> None:
    clock = FakeClock()
    work = Counted()
    with use_clock(clock):

        @cached("ttl", ttl=10)
        def get() -> Any:
            return work()

        get()
        clock.advance(9.9)
        get()
        assert len(work.calls) == 1
        clock.advance(0.2)
        get()
        assert len(work.calls) == 2


def test_stale_entries_are_served_while_one_caller_refreshes() -> None:
    clock = FakeClock()
    work = Counted()

    @cached("stale", ttl=10, stale_ttl=5, clock=clock)
    def get() -> Any:
        return work()

    get()
    clock.advance(12)  # stale, not expired: this caller refreshes
    get()
    assert len(work.calls) == 2
    clock.advance(20)  # past stale_ttl too: a plain miss
    get()
    assert len(work.calls) == 3


def test_early_refresh_recomputes_before_expiry() -> None:
    clock = FakeClock()
    calls = []

    @cached("xfetch", ttl=10, early_refresh=1.0, clock=clock)
    def get() -> int:
        calls.append(1)
        clock.advance(5)  # a slow computation: delta = 5 s
        return 1

    get()
    clock.advance(9.9)  # 0.1 s before expiry with delta 5: refreshed with probability ~0.98
    for _ in range(20):
        get()
    assert len(calls) >= 2


def test_ttl_jitter_shortens_ttls_within_bounds(fresh_cache: MemoryBackend) -> None:
    clock = FakeClock()

    @cached("jitter", ttl=100, ttl_jitter=0.5, clock=clock)
    def get(n: int) -> int:
        return n

    for n in range(50):
        get(n)
    lifetimes = {entry.fresh_until for entry in fresh_cache._data.values()}
    assert len(lifetimes) > 10
    assert all(50 <= t <= 100 for t in lifetimes)


class Broken(MemoryBackend):
    """A backend whose every operation fails."""

    def get(self, scope: str, key: str) -> Any:
        raise ConnectionError("down")

    def set(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        raise ConnectionError("down")


def test_a_failing_backend_is_a_counted_miss(caplog: pytest.LogCaptureFixture) -> None:
    work = Counted()

    @cached("broken", backend=Broken())
    def get(n: int) -> Any:
        return work(n)

    with caplog.at_level(logging.WARNING, logger="resilience_kit.cache"):
        assert get(1) == {"args": [1]}
        assert get(1) == {"args": [1]}
    assert len(work.calls) == 2
    stats = cache_stats().prefixes["broken"]
    assert (stats.hits, stats.misses, stats.errors) == (0, 2, 2)
    assert "ConnectionError" in caplog.text


def test_corrupt_entries_are_counted_misses(fresh_cache: MemoryBackend) -> None:
    class Bytes(MemoryBackend):
        stores_bytes = True
        compress_over = None

    backend = Bytes()
    work = Counted()

    @cached("corrupt", backend=backend)
    def get(n: int) -> Any:
        return work(n)

    get(1)
    (key,) = backend._data
    backend._data[key] = b"garbage"  # type: ignore[assignment]
    assert get(1) == {"args": [1]}
    assert get(1) == {"args": [1]}
    assert len(work.calls) == 2
    assert cache_stats().prefixes["corrupt"].errors == 1


def test_stats_are_a_frozen_snapshot() -> None:
    @cached("snap")
    def get() -> int:
        return 1

    get()
    before = cache_stats()
    get()
    assert before.prefixes["snap"].hits == 0
    assert cache_stats().prefixes["snap"].hits == 1
    with pytest.raises(AttributeError):
        before.hits = 5  # type: ignore[misc]
    assert cache_stats().to_dict()["prefixes"]["snap"]["hits"] == 1  # type: ignore[index]


def test_a_function_backend_overrides_the_default(fresh_cache: MemoryBackend) -> None:
    own = MemoryBackend()

    @cached("own", backend=own)
    def get() -> int:
        return 1

    get()
    assert own.size() == 1
    assert fresh_cache.size() == 0


def test_the_lru_keeps_the_most_recently_used() -> None:
    backend = MemoryBackend(max_entries=2)
    work = Counted()

    @cached("lru", backend=backend)
    def get(n: int) -> Any:
        return work(n)

    get(1), get(2), get(1), get(3)  # 2 is the least recently used
    get(1)
    assert len(work.calls) == 3
    get(2)
    assert len(work.calls) == 4


def test_an_expired_entry_is_never_served_even_past_a_held_lease() -> None:
    clock = FakeClock()
    calls = []

    class Leased(MemoryBackend):
        """A backend whose lease is always held by another process."""

        lock_wait = 0.05

        def acquire(self, scope: str, key: str) -> str | None:
            return None

    @cached("expired-lease", ttl=10, backend=Leased(), clock=clock)
    def get() -> int:
        calls.append(1)
        return len(calls)

    assert get() == 1
    clock.advance(11)  # expired, no stale_ttl: the old value must not come back
    assert get() == 2
