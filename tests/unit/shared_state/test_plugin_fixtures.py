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


IMPORT_TIME_TESTS = """
import time

import fakeredis
import pytest

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage

SERVER = fakeredis.FakeServer()
# Built at import, before any fixture runs: on the Redis server's clock, as in an application.
STORAGE = RedisStorage(fakeredis.FakeRedis(server=SERVER), prefix="app")
PAY = CircuitBreaker("pay", failure_threshold=1, recovery_timeout=30, storage=STORAGE)
OTHER_PROCESS = RedisStorage(fakeredis.FakeRedis(server=SERVER), prefix="app")


def boom():
    raise ValueError("down")


def test_an_import_time_shared_breaker_obeys_fake_clock(breakers, fake_clock):
    assert STORAGE.fixed_clock is fake_clock
    with pytest.raises(ValueError):
        PAY.call(boom)
    assert PAY.state is CircuitState.OPEN
    fake_clock.advance(29)
    with pytest.raises(CircuitOpenError) as rejected:
        PAY.call(lambda: "too early")
    assert rejected.value.retry_after == pytest.approx(1, abs=0.05)
    fake_clock.advance(1)
    assert PAY.call(lambda: "trial") == "trial"  # Redis agreed the timeout is over
    assert PAY.state is CircuitState.CLOSED
    with pytest.raises(ValueError):
        PAY.call(boom)  # left OPEN for 30 s of the fake clock


def test_afterwards_the_server_clock_is_back(breakers):
    assert STORAGE.fixed_clock is None
    assert PAY.state is CircuitState.CLOSED  # the breakers fixture reset it, in Redis too
    stored = fakeredis.FakeRedis(server=SERVER).hget("{app:breaker:pay}:state", "s")
    assert stored == b"CLOSED"
    with pytest.raises(ValueError):
        PAY.call(boom)
    with pytest.raises(CircuitOpenError) as rejected:
        PAY.call(lambda: "rejected")
    assert 29 < rejected.value.retry_after <= 30  # real seconds again


def test_the_fake_timeline_continues_the_real_one(request):
    PAY.reset()
    with pytest.raises(ValueError):
        PAY.call(boom)  # OPEN for 30 s by the server's clock
    fake_clock = request.getfixturevalue("fake_clock")
    assert PAY.state is CircuitState.OPEN
    fake_clock.advance(25)
    with pytest.raises(CircuitOpenError):
        PAY.call(lambda: "too early")
    fake_clock.advance(5)  # past what was left of the real timeout
    assert PAY.call(lambda: "trial") == "trial"
    assert PAY.state is CircuitState.CLOSED
"""


def test_an_import_time_shared_breaker_follows_the_fake_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=IMPORT_TIME_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


LAZY_TESTS = """
import fakeredis
import pytest

from resilience_kit import CircuitBreaker, CircuitState, RedisStorage

SERVER = fakeredis.FakeServer()
# Made at import, as an application's settings module does; its breakers come later.
STORAGE = RedisStorage(fakeredis.FakeRedis(server=SERVER), prefix="lazy")


def boom():
    raise ValueError("down")


def test_a_breaker_made_in_the_test_on_an_import_time_storage(fake_clock):
    assert STORAGE.fixed_clock is fake_clock
    pay = CircuitBreaker("pay", failure_threshold=1, recovery_timeout=30, storage=STORAGE)
    with pytest.raises(ValueError):
        pay.call(boom)
    assert pay.state is CircuitState.OPEN
    fake_clock.advance(30)
    assert pay.call(lambda: "trial") == "trial"
    assert pay.state is CircuitState.CLOSED


def test_the_storage_is_on_the_server_clock_again():
    assert STORAGE.fixed_clock is None
"""


def test_an_import_time_storage_without_breakers_follows_the_fake_clock(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_lazy=LAZY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_an_announcement_from_before_the_clock_switch_keeps_its_timeout(
    storage_factory, process, server
) -> None:
    """The race the import-time test above once lost: the subscriber thread applied the
    OPEN announcement (sent on the server's clock) only after the test had switched to the
    fake clock and advanced it 25 s, which restarted the 30 s timeout there."""
    import fakeredis

    from resilience_kit import CircuitOpenError, CircuitState
    from resilience_kit.testing import FakeClock

    storage = storage_factory()
    breaker = process(storage=storage, failure_threshold=1, recovery_timeout=30)
    assert breaker.call(lambda: "first") == "first"
    if storage._listener is not None:
        storage._listener.stop()  # this test delivers the announcement itself, late
    watcher = fakeredis.FakeRedis(server=server).pubsub(ignore_subscribe_messages=True)
    watcher.subscribe(storage.channel)
    with pytest.raises(ValueError, match="down"):
        breaker.call(_boom)  # OPEN for 30 s by the server's clock; announced
    messages = [watcher.get_message(timeout=0.1) for _ in range(3)]  # (a confirmation first)
    (message,) = [message for message in messages if message is not None]
    clock = FakeClock()
    storage._use_clock(clock)
    breaker._use_clock(clock, rebase=False)
    clock.advance(25)
    storage.receive(message["data"].decode())  # arrives only now
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(lambda: "too early")
    assert rejected.value.retry_after == pytest.approx(5, abs=0.5)
    clock.advance(5)
    assert breaker.call(lambda: "trial") == "trial"


def _boom() -> None:
    raise ValueError("down")
