"""Exceptions raised by resilience_kit.

Everything the library raises on its own account derives from
[`ResilienceError`][resilience_kit.ResilienceError], so one ``except ResilienceError`` catches it
all; errors of the user's own calls pass through unchanged.
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

    # The attributes are read from ``args`` rather than stored by ``__init__``: a breaker builds
    # its rejections with ``BaseException.__new__`` (which stores the arguments) and skips the
    # Python-level ``__init__`` below, which would cost more than the whole rest of its
    # rejection path. ``__init__`` is for everyone else: keywords, and defaults for what is
    # left out.
    __slots__ = ()

    def __init__(
        self, breaker: str, retry_after: float = 0.0, state: CircuitState | None = None
    ) -> None:
        super().__init__(breaker, retry_after, _open() if state is None else state)

    @property
    def breaker(self) -> str:
        """The name of the breaker that rejected the call."""
        args = self.args
        return args[0] if args else ""

    @property
    def retry_after(self) -> float:
        """Seconds until the breaker admits a trial call."""
        args = self.args
        return args[1] if len(args) > 1 else 0.0

    @property
    def state(self) -> CircuitState:
        """The breaker's state when it rejected the call (``OPEN`` if the creator left it out)."""
        args = self.args
        return args[2] if len(args) > 2 else _open()

    def __str__(self) -> str:
        return (
            f"circuit breaker {self.breaker!r} is {self.state}; retry after {self.retry_after:.3f}s"
        )

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[str, float, CircuitState]]:
        return (type(self), (self.breaker, self.retry_after, self.state))


def _open() -> CircuitState:
    # Imported here: the breaker package imports this module.
    from resilience_kit.breaker._machine import CircuitState

    return CircuitState.OPEN


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
