"""Circuit breaker."""

from __future__ import annotations

import enum

__all__ = ["CircuitState"]


class CircuitState(str, enum.Enum):
    """The states of a circuit breaker; ``str()`` gives the upper-case name used in JSON."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    DISABLED = "DISABLED"

    def __str__(self) -> str:
        return self.value
