"""The parts the plugin's fixtures stand on, tested directly."""

from __future__ import annotations

import asyncio
import time

import pytest

from resilience_kit import CircuitBreaker, CircuitState, chaos
from resilience_kit import pytest_plugin as plugin
from resilience_kit.breaker._clocks import use_clock_everywhere
from resilience_kit.testing import FakeClock


def fail() -> None:
    raise ConnectionError("down")


def test_the_undo_moves_breakers_created_on_the_clock_to_then() -> None:
    before = FakeClock(100.0)
    old = CircuitBreaker("then-old", failure_threshold=1, recovery_timeout=30, clock=before)
    fake = FakeClock()
    afterwards = FakeClock(5000.0)
    restore = use_clock_everywhere(fake, then=afterwards)
    created = CircuitBreaker("then-new", failure_threshold=1, recovery_timeout=30, clock=fake)
    elsewhere = CircuitBreaker("then-elsewhere", clock=FakeClock())
    own_clock = elsewhere._clock
    with pytest.raises(ConnectionError):
        created.call(fail)
    fake.advance(10)
    restore()
    assert old._clock is before
    assert created._clock is afterwards
    assert elsewhere._clock is own_clock
    assert created.stats().retry_after == 20  # rebased: what was left carries over
    afterwards.advance(20)
    assert created.state is CircuitState.HALF_OPEN


def test_without_then_breakers_created_on_the_clock_stay_on_it() -> None:
    fake = FakeClock()
    restore = use_clock_everywhere(fake)
    created = CircuitBreaker("then-none", clock=fake)
    restore()
    assert created._clock is fake


def test_a_handed_over_fake_clock_runs_on_from_where_it_stood() -> None:
    clock = FakeClock()
    clock.advance(1000)
    real = time.monotonic()
    clock._hand_over(FakeClock(50.0, wall_start=1_800_000_000.0))
    assert clock.monotonic() == 1000  # no jump, forwards or back
    target = clock._follow
    assert isinstance(target, FakeClock)
    target.advance(2)
    assert clock.monotonic() == 1002
    clock.advance(1)  # still moves on request
    assert clock.monotonic() == 1003
    assert clock.wall() == 1_800_000_002.0
    clock.sleep(5)  # sleeps the way the clock it follows does
    assert clock.monotonic() == 1008
    asyncio.run(clock.async_sleep(1))
    assert clock.monotonic() == 1009
    assert "following=FakeClock" in repr(clock)
    assert time.monotonic() - real < 1  # none of that slept


def test_a_fake_clock_handed_over_to_the_system_clock_really_sleeps() -> None:
    from resilience_kit.clock import SYSTEM_CLOCK

    clock = FakeClock()
    clock._hand_over(SYSTEM_CLOCK)
    start = clock.monotonic()
    clock.sleep(0.02)
    asyncio.run(clock.async_sleep(0.02))
    assert clock.monotonic() - start >= 0.04
    assert abs(clock.wall() - time.time()) < 1


def test_the_chaos_switch_is_restored_around_a_test() -> None:
    state = chaos._snapshot()
    try:
        with chaos.disable():
            saved = plugin._save_chaos()
            chaos.enable()  # a bare switch the test never ends
            assert chaos.is_enabled()
            plugin._restore_chaos(saved)
            assert not chaos.is_enabled()
        # Chaos first imported during the test: no switch in effect, as at import.
        chaos.enable()
        plugin._restore_chaos(None)
        assert chaos.is_enabled() == chaos._BASE
    finally:
        chaos._restore(state)
