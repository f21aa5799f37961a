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

    # The attributes are read from ``args`` rather than set in ``__init__``: a Python-level
    # ``__init__`` costs more than the whole rest of a breaker's rejection path, and
    # ``BaseException.__new__`` already stores the arguments.
    __slots__ = ()

    if TYPE_CHECKING:

        def __init__(self, breaker: str, retry_after: float, state: CircuitState, /) -> None: ...

    @property
    def breaker(self) -> str:
        """The name of the breaker that rejected the call."""
        return self.args[0]  # type: ignore[no-any-return]

    @property
    def retry_after(self) -> float:
        """Seconds until the breaker admits a trial call."""
        return self.args[1]  # type: ignore[no-any-return]

    @property
    def state(self) -> CircuitState:
        """The breaker's state when it rejected the call."""
        return self.args[2]  # type: ignore[no-any-return]

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
