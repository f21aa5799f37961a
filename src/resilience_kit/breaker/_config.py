"""A breaker's keyword arguments, checked: every bad value is a clear `ConfigurationError`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from resilience_kit import _validation as check
from resilience_kit.breaker._machine import MachineSettings
from resilience_kit.breaker.storage import BreakerStorage, MemoryStorage
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import ConfigurationError

__all__ = ["Config", "validate"]


class Config(NamedTuple):
    """The checked configuration (listeners apart: the breaker sorts them by event)."""

    settings: MachineSettings
    slow: float | None
    failure_on: tuple[type[BaseException], ...]
    ignore: tuple[type[BaseException], ...]
    failure_if: Callable[[Any], bool] | None
    fallback: Callable[..., Any] | None
    storage: BreakerStorage
    clock: Clock


def validate(name: object, options: dict[str, Any]) -> Config:
    """Check ``name`` and the breaker's keyword ``options``; defaults filled in.

    Raises:
        ConfigurationError: A value outside its range, naming the parameter.
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"name must be a non-empty str, got {name!r}", parameter="name", value=name
        )
    rate = options["failure_rate"]
    recovery = check.check_number(
        "recovery_timeout", options["recovery_timeout"], minimum=0, min_inclusive=False
    )
    ceiling = options["max_recovery_timeout"]
    settings = MachineSettings(
        failure_threshold=check.check_int(
            "failure_threshold", options["failure_threshold"], minimum=1
        ),
        failure_rate=None
        if rate is None
        else check.check_number("failure_rate", rate, minimum=0, min_inclusive=False, maximum=1),
        window=check.check_number("window", options["window"], minimum=0, min_inclusive=False),
        minimum_calls=check.check_int("minimum_calls", options["minimum_calls"], minimum=1),
        recovery_timeout=recovery,
        max_recovery_timeout=None
        if ceiling is None
        else check.check_number("max_recovery_timeout", ceiling, minimum=recovery),
        half_open_max_calls=check.check_int(
            "half_open_max_calls", options["half_open_max_calls"], minimum=1
        ),
        success_threshold=check.check_int(
            "success_threshold", options["success_threshold"], minimum=1
        ),
    )
    slow = options["slow_call_threshold"]
    slow = (
        None
        if slow is None
        else check.check_number("slow_call_threshold", slow, minimum=0, min_inclusive=False)
    )
    failure_on = check.check_exception_types("failure_on", options["failure_on"])
    if not all(issubclass(kind, Exception) for kind in failure_on):
        # Never counted (they are not errors), so listing one would only mislead.
        raise check._fail(
            "failure_on",
            options["failure_on"],
            "subclasses of Exception (KeyboardInterrupt, SystemExit and CancelledError "
            "never count as failures)",
        )
    ignore = check.check_exception_types("ignore", options["ignore"])
    failure_if = check.check_callable("failure_if", options["failure_if"])
    fallback = check.check_callable("fallback", options["fallback"])
    storage = options["storage"]
    if storage is None:
        storage = MemoryStorage()
    elif not isinstance(storage, BreakerStorage):
        raise ConfigurationError(
            f"storage must be a BreakerStorage or None, got {storage!r}",
            parameter="storage",
            value=storage,
        )
    clock = check.check_clock("clock", options["clock"])
    if clock is None:
        clock = default_clock()
    return Config(
        settings=settings,
        slow=slow,
        failure_on=failure_on,
        ignore=ignore,
        failure_if=failure_if,
        fallback=fallback,
        storage=storage,
        clock=clock,
    )
