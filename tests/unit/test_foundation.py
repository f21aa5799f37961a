"""The package's shared foundations: errors, clocks, validation."""

from __future__ import annotations

import pickle
import time

import pytest

import resilience_kit
from resilience_kit import CircuitOpenError, CircuitState, ConfigurationError, ResilienceError
from resilience_kit.clock import SYSTEM_CLOCK, Clock, default_clock
from resilience_kit.testing import FakeClock, use_clock


def test_version_is_exported() -> None:
    assert isinstance(resilience_kit.__version__, str)
    assert resilience_kit.__version__[0].isdigit()


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in resilience_kit.__all__:
        obj = getattr(resilience_kit, name)
        if name != "__version__":
            assert obj.__doc__, f"{name} has no docstring"


def test_error_hierarchy() -> None:
    assert issubclass(CircuitOpenError, ResilienceError)
    assert issubclass(ConfigurationError, ResilienceError)
    assert issubclass(ConfigurationError, ValueError)


def test_circuit_open_error_carries_breaker_details_and_pickles() -> None:
    error = CircuitOpenError("payments", 12.5, CircuitState.OPEN)
    assert (error.breaker, error.retry_after, error.state) == ("payments", 12.5, CircuitState.OPEN)
    assert str(error) == "circuit breaker 'payments' is OPEN; retry after 12.500s"
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (clone.breaker, clone.retry_after, clone.state) == ("payments", 12.5, CircuitState.OPEN)


def test_circuit_open_error_can_be_made_with_keywords_or_only_a_name() -> None:
    error = CircuitOpenError("db", retry_after=5.0, state=CircuitState.HALF_OPEN)
    assert (error.breaker, error.retry_after, error.state) == ("db", 5.0, CircuitState.HALF_OPEN)
    assert str(error) == "circuit breaker 'db' is HALF_OPEN; retry after 5.000s"
    bare = CircuitOpenError("db")
    assert (bare.retry_after, bare.state) == (0.0, CircuitState.OPEN)
    assert str(bare) == "circuit breaker 'db' is OPEN; retry after 0.000s"
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert clone.args == error.args


def test_circuit_state_str_is_the_json_name() -> None:
    assert str(CircuitState.HALF_OPEN) == "HALF_OPEN"
    assert f"{CircuitState.OPEN}" == "OPEN"


def test_system_clock_reads_the_system() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    before = time.monotonic()
    assert before <= SYSTEM_CLOCK.monotonic() <= time.monotonic()
    assert abs(SYSTEM_CLOCK.wall() - time.time()) < 1


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start=5.0, wall_start=1000.0)
    assert isinstance(clock, Clock)
    assert clock.monotonic() == 5.0
    assert clock.wall() == 1000.0
    clock.advance(2.5)
    assert clock.monotonic() == 7.5
    assert clock.wall() == 1002.5
    clock.sleep(1)
    assert clock.monotonic() == 8.5


async def test_fake_clock_async_sleep_advances() -> None:
    clock = FakeClock()
    await clock.async_sleep(3)
    assert clock.monotonic() == 3.0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "1", True])
def test_fake_clock_rejects_bad_advance(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="seconds must be") as info:
        FakeClock().advance(bad)  # type: ignore[arg-type]
    assert info.value.parameter == "seconds"


def test_use_clock_sets_and_restores_the_default() -> None:
    clock = FakeClock()
    assert default_clock() is SYSTEM_CLOCK
    with use_clock(clock):
        assert default_clock() is clock
    assert default_clock() is SYSTEM_CLOCK


def test_use_clock_restores_after_an_error() -> None:
    with pytest.raises(RuntimeError), use_clock(FakeClock()):
        raise RuntimeError
    assert default_clock() is SYSTEM_CLOCK
