"""Construction-time checks that raise [`ConfigurationError`][resilience_kit.ConfigurationError]
with uniform messages.

Every message names the parameter, the value given and the allowed range, so a user never has
to guess which argument was wrong.
"""

from __future__ import annotations

import math
from typing import Any

from resilience_kit.clock import Clock
from resilience_kit.errors import ConfigurationError


def _fail(name: str, value: object, allowed: str) -> ConfigurationError:
    return ConfigurationError(
        f"{name} must be {allowed}, got {value!r}", parameter=name, value=value
    )


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, value, f"an int >= {minimum}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (a truthy str such as ``"no"`` is refused)."""
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False")
    return value


def check_clock(name: str, value: Any) -> Clock | None:
    """Return ``value`` if it is a [Clock][resilience_kit.clock.Clock] or None."""
    if value is not None and not isinstance(value, Clock):
        raise _fail(name, value, "a Clock (monotonic() and wall()) or None")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a finite real number within the given bounds."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>=' if min_inclusive else '>'} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<=' if max_inclusive else '<'} {maximum:g}")
    allowed = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(name, value, allowed)
    if minimum is not None and (value < minimum or (not min_inclusive and value == minimum)):
        raise _fail(name, value, allowed)
    if maximum is not None and (value > maximum or (not max_inclusive and value == maximum)):
        raise _fail(name, value, allowed)
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise _fail(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return str(value)


def check_exception_types(name: str, value: Any) -> tuple[type[BaseException], ...]:
    """Normalise an exception class or a tuple of them to a tuple, rejecting anything else."""
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise _fail(name, value, "an exception class or a tuple of exception classes")
    return items


def check_callable(name: str, value: Any) -> Any:
    """Return ``value`` if it is None or callable."""
    if value is not None and not callable(value):
        raise _fail(name, value, "a callable or None")
    return value
