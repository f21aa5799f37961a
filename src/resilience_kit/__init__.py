"""resilience_kit: resilience primitives for Python services.

The public API is re-exported here; everything in a ``_``-prefixed module is private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from resilience_kit.composition import resilient
from resilience_kit.errors import CircuitOpenError, ConfigurationError, ResilienceError
from resilience_kit.retry import (
    BEST_EFFORT,
    DATABASE,
    EXTERNAL_API,
    INTERNAL_API,
    REDIS,
    RetryPolicy,
    RetryStats,
    reset_retry_stats,
    retry_stats,
)

if TYPE_CHECKING:
    from resilience_kit._retry import retry
else:
    # The module itself, which is callable as the decorator: see resilience_kit/retry.py.
    from resilience_kit import retry

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
    # retry
    "RetryPolicy",
    "RetryStats",
    "retry",
    "retry_stats",
    "reset_retry_stats",
    "DATABASE",
    "REDIS",
    "EXTERNAL_API",
    "INTERNAL_API",
    "BEST_EFFORT",
    # composition
    "resilient",
    "BreakerStats",
    "BreakerListener",
    "BreakerStorage",
    "MemoryStorage",
    "breakers",
    "get_breaker",
]
