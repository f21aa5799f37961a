"""resilience_kit: resilience primitives for Python services.

The public API is re-exported here; everything in a ``_``-prefixed module is private.
"""

from __future__ import annotations

from resilience_kit.breaker import (
    BreakerListener,
    BreakerStats,
    BreakerStorage,
    CircuitBreaker,
    CircuitState,
    MemoryStorage,
    breakers,
    get_breaker,
)
from resilience_kit.clock import Clock
from resilience_kit.errors import CircuitOpenError, ConfigurationError, ResilienceError

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    # errors
    "ResilienceError",
    "CircuitOpenError",
    "ConfigurationError",
    # time
    "Clock",
    # circuit breaker
    "CircuitBreaker",
    "CircuitState",
    "BreakerStats",
    "BreakerListener",
    "BreakerStorage",
    "MemoryStorage",
    "breakers",
    "get_breaker",
]
