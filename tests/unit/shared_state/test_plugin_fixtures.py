"""The pytest plugin's ``fake_clock`` and ``breakers`` fixtures with Redis-backed breakers."""

from __future__ import annotations

import pytest

USER_TESTS = """
import fakeredis
import pytest

from resilience_kit import CircuitBreaker, CircuitState, RedisStorage

SERVER = fakeredis.FakeServer()
KEEP = []  # the first test's breaker lives on, as a module-level one in an application does


def boom():
    raise ValueError("down")


@pytest.fixture
def shared(fake_clock):
    storage = RedisStorage(fakeredis.FakeRedis(server=SERVER), prefix="plugin")
    assert storage.fixed_clock is fake_clock
    breaker = CircuitBreaker("pay", failure_threshold=1, recovery_timeout=30, storage=storage)
    KEEP.append(breaker)
    return breaker


def test_fake_clock_runs_the_shared_timeout(shared, fake_clock):
    with pytest.raises(ValueError):
        shared.call(boom)
    assert shared.state is CircuitState.OPEN
    fake_clock.advance(30)
    assert shared.call(lambda: "trial") == "trial"
    assert shared.state is CircuitState.CLOSED
    with pytest.raises(ValueError):
        shared.call(boom)  # left OPEN, in Redis too, for the next test


def test_breakers_fixture_starts_from_a_fresh_closed_state(breakers):
    (left_open,) = KEEP
    assert left_open.state is CircuitState.CLOSED
    stored = fakeredis.FakeRedis(server=SERVER).hget("{plugin:breaker:pay}:state", "s")
    assert stored == b"CLOSED"  # reset in Redis, so every process starts afresh too
"""


def test_fake_clock_and_breakers_fixtures_work_with_shared_breakers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
