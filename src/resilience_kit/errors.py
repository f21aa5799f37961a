"""Exceptions raised by resilience_kit.

Everything the library raises on its own account derives from :class:`ResilienceError`, so one
``except ResilienceError`` catches it all; errors of the user's own calls pass through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resilience_kit.breaker import CircuitState

__all__ = ["CircuitOpenError", "ConfigurationError", "ResilienceError"]


class ResilienceError(Exception):
    """Base class of every exception resilience_kit raises itself."""


class CircuitOpenError(ResilienceError):
    """A circuit breaker rejected the call without running it.

    Attributes:
        breaker: The name of the breaker that rejected the call.
        retry_after: Seconds until the breaker admits a trial call (``0.0`` when it is held
            open by hand and no time will open it).
        state: The breaker's state when it rejected the call.
    """

    def __init__(self, breaker: str, retry_after: float, state: CircuitState) -> None:
        self.breaker = breaker
        self.retry_after = retry_after
        self.state = state
        super().__init__(breaker, retry_after, state)

    def __str__(self) -> str:
        return (
            f"circuit breaker {self.breaker!r} is {self.state}; retry after {self.retry_after:.3f}s"
        )

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[str, float, CircuitState]]:
        return (type(self), (self.breaker, self.retry_after, self.state))


class ConfigurationError(ResilienceError, ValueError):
    """A parameter is outside its allowed range.

    Raised at construction or decoration time, never in the middle of a call. The message names
    the parameter, the value given and the allowed range, for example
    ``failure_threshold must be an int >= 1, got 0``.

    Attributes:
        parameter: The name of the offending parameter.
        value: The value that was given.
    """

    def __init__(self, message: str, *, parameter: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value
