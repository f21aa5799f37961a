"""Every constructor parameter is checked at construction, with a message naming it."""

from __future__ import annotations

from typing import Any

import pytest

from resilience_kit import CircuitBreaker, ConfigurationError, MemoryStorage
from resilience_kit.testing import FakeClock, use_clock

BAD = [
    ("failure_threshold", 0, "failure_threshold must be an int >= 1, got 0"),
    ("failure_threshold", 2.5, "failure_threshold must be an int >= 1, got 2.5"),
    ("failure_threshold", True, "failure_threshold must be an int >= 1, got True"),
    ("failure_rate", 0, "failure_rate must be a finite number > 0 and <= 1, got 0"),
    ("failure_rate", 1.5, "failure_rate must be a finite number > 0 and <= 1, got 1.5"),
    ("failure_rate", float("nan"), "failure_rate must be a finite number > 0 and <= 1, got nan"),
    ("window", 0, "window must be a finite number > 0, got 0"),
    ("window", -1.0, "window must be a finite number > 0, got -1.0"),
    ("minimum_calls", 0, "minimum_calls must be an int >= 1, got 0"),
    ("recovery_timeout", 0, "recovery_timeout must be a finite number > 0, got 0"),
    ("recovery_timeout", "60", "recovery_timeout must be a finite number > 0, got '60'"),
    ("max_recovery_timeout", 59.0, "max_recovery_timeout must be a finite number >= 60, got 59.0"),
    ("half_open_max_calls", 0, "half_open_max_calls must be an int >= 1, got 0"),
    ("success_threshold", 0, "success_threshold must be an int >= 1, got 0"),
    ("slow_call_threshold", 0, "slow_call_threshold must be a finite number > 0, got 0"),
    (
        "slow_call_threshold",
        float("inf"),
        "slow_call_threshold must be a finite number > 0, got inf",
    ),
    (
        "failure_on",
        "ValueError",
        "failure_on must be an exception class or a tuple of exception classes, got 'ValueError'",
    ),
    (
        "ignore",
        (KeyError, 3),
        "ignore must be an exception class or a tuple of exception classes, got (<class "
        "'KeyError'>, 3)",
    ),
    (
        "failure_on",
        (ValueError, KeyboardInterrupt),
        "failure_on must be subclasses of Exception (KeyboardInterrupt, SystemExit and "
        "CancelledError never count as failures), got (<class 'ValueError'>, <class "
        "'KeyboardInterrupt'>)",
    ),
    (
        "failure_on",
        BaseException,
        "failure_on must be subclasses of Exception (KeyboardInterrupt, SystemExit and "
        "CancelledError never count as failures), got <class 'BaseException'>",
    ),
    (
        "listeners",
        5,
        "listeners must be an iterable of listeners (objects with some of on_state_change, "
        "on_success, on_failure, on_rejected, on_storage_degraded, on_storage_recovered), got 5",
    ),
    (
        "listeners",
        [1],
        "listeners must be an iterable of listeners (objects with some of on_state_change, "
        "on_success, on_failure, on_rejected, on_storage_degraded, on_storage_recovered), got [1]",
    ),
    ("failure_if", 1, "failure_if must be a callable or None, got 1"),
    ("fallback", "none", "fallback must be a callable or None, got 'none'"),
]


@pytest.mark.parametrize(("parameter", "value", "message"), BAD)
def test_a_bad_parameter_is_named_with_its_value_and_range(
    parameter: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CircuitBreaker("bad", **{parameter: value})
    assert str(caught.value) == message
    assert caught.value.parameter == parameter
    # A rejected configuration does not take the name.
    CircuitBreaker("bad").unregister()


@pytest.mark.parametrize("name", ["", None, 3])
def test_name_must_be_a_non_empty_string(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="name must be a non-empty str"):
        CircuitBreaker(name)


def test_storage_and_clock_must_fit_their_protocols() -> None:
    with pytest.raises(ConfigurationError, match="storage must be a BreakerStorage"):
        CircuitBreaker("s", storage=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="clock must be a Clock"):
        CircuitBreaker("s", clock=object())  # type: ignore[arg-type]


def test_the_edges_of_every_range_are_accepted() -> None:
    breaker = CircuitBreaker(
        "edges",
        failure_threshold=1,
        failure_rate=1.0,
        window=0.001,
        minimum_calls=1,
        recovery_timeout=0.001,
        max_recovery_timeout=0.001,
        half_open_max_calls=1,
        success_threshold=1,
        slow_call_threshold=0.001,
        failure_on=(ValueError, OSError),
        ignore=(),
        storage=MemoryStorage(),
        clock=FakeClock(),
    )
    assert str(breaker.state) == "CLOSED"


def test_clock_none_takes_the_default_clock_at_construction() -> None:
    fake = FakeClock()
    with use_clock(fake):
        breaker = CircuitBreaker("clocked", failure_threshold=1, recovery_timeout=10)
    # The block has ended: the breaker keeps the clock it was built with.
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert str(breaker.state) == "OPEN"
    fake.advance(10)
    assert str(breaker.state) == "HALF_OPEN"


def test_ignore_may_name_any_exception_type() -> None:
    # Ignoring KeyboardInterrupt changes nothing (it never counts), but it is not wrong.
    breaker = CircuitBreaker("ok", ignore=(KeyboardInterrupt, KeyError))
    assert breaker.ignore == (KeyboardInterrupt, KeyError)
    breaker.unregister()


def test_a_listener_needs_only_one_of_the_methods() -> None:
    class OnlyRejections:
        def on_rejected(self, breaker: CircuitBreaker) -> None:
            pass

    CircuitBreaker("ok", listeners=(listener for listener in [OnlyRejections()])).unregister()
