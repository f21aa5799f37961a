"""The plugin's memory_cache fixture, and fake_clock reaching cache entries (pytester)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

USER_TESTS = """
import asyncio
import fakeredis
import pytest
from resilience_kit.cache import RedisBackend, cache_stats, cached

CALLS = []
redis_backend = RedisBackend(fakeredis.FakeRedis(), namespace="app")


@cached("profile", ttl=60, backend=redis_backend)
def profile(user_id):
    CALLS.append(user_id)
    return {"id": user_id}


@cached("aprofile", ttl=60)
async def aprofile(user_id):
    CALLS.append(user_id)
    return {"id": user_id}


def test_entries_land_in_the_fixture_backend(memory_cache):
    assert profile(1) == profile(1)
    assert CALLS == [1]
    assert memory_cache.size() == 1
    assert redis_backend.sync_client().keys("*") == []
    assert cache_stats().prefixes["profile"].hits == 1


def test_each_test_starts_empty(memory_cache):
    CALLS.clear()
    profile(1)
    assert CALLS == [1]
    assert cache_stats().prefixes["profile"].hits == 0


def test_fake_clock_expires_entries(memory_cache, fake_clock):
    CALLS.clear()
    profile(1)
    fake_clock.advance(59)
    profile(1)
    assert CALLS == [1]
    fake_clock.advance(2)
    profile(1)
    assert CALLS == [1, 1]


async def test_async_functions_and_invalidation(memory_cache):
    CALLS.clear()
    await aprofile(2)
    await aprofile.invalidate(2)
    await aprofile(2)
    assert CALLS == [2, 2]


def test_without_the_fixture_the_functions_own_backend_is_used():
    CALLS.clear()
    profile(3)
    assert redis_backend.sync_client().keys("app:*")
"""


def _plugin_args() -> list[str]:
    installed = any(
        e.value == "resilience_kit.pytest_plugin" for e in entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "resilience_kit.pytest_plugin"]


def test_memory_cache_isolates_tests_and_fake_clock_reaches_ttls(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
