"""Circuit breaker: stop calling a failing dependency, then probe it with a few trial calls.

See [`CircuitBreaker`][resilience_kit.CircuitBreaker]. The state machine itself is in ``_machine``
(pure, no I/O), the failure policies in ``_windows``, and where the state lives in `storage`.
"""

from __future__ import annotations

from resilience_kit.breaker._breaker import (
    BreakerListener,
    BreakerStats,
    CircuitBreaker,
    add_global_listener,
    remove_global_listener,
)
from resilience_kit.breaker._machine import CircuitState
from resilience_kit.breaker._registry import breakers, get_breaker
from resilience_kit.breaker.storage import BreakerStorage, MemoryStorage

__all__ = [
    "BreakerListener",
    "BreakerStats",
    "BreakerStorage",
    "CircuitBreaker",
    "CircuitState",
    "MemoryStorage",
    "add_global_listener",
    "breakers",
    "get_breaker",
    "remove_global_listener",
]
