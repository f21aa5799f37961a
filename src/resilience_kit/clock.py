"""Time sources.

Every primitive that measures time takes a ``clock``: anything with ``monotonic()`` (for
durations and deadlines) and ``wall()`` (for timestamps users read). The default reads the
system clocks; tests pass [`resilience_kit.testing.FakeClock`][resilience_kit.testing.FakeClock]
instead, or install one for everything created in a block with
[`resilience_kit.testing.use_clock()`][resilience_kit.testing.use_clock].
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "default_clock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch, for timestamps shown to people."""
        ...


class SystemClock:
    """The system's clocks: `time.monotonic()` and `time.time()`."""

    __slots__ = ()

    # Bound straight to the C functions, so a breaker reading the time pays one call, not two.
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()
"""The process's system clock; what a primitive uses when it is given no clock."""

_default: Clock = SYSTEM_CLOCK


def default_clock() -> Clock:
    """Return the clock that primitives created now without a ``clock`` argument will use.

    That is [`SYSTEM_CLOCK`][resilience_kit.clock.SYSTEM_CLOCK] unless a test has installed another
    with [`resilience_kit.testing.use_clock()`][resilience_kit.testing.use_clock].
    """
    return _default


def _set_default_clock(clock: Clock) -> Clock:
    """Install ``clock`` as the default and return the previous one (for ``testing``)."""
    global _default
    previous, _default = _default, clock
    return previous
