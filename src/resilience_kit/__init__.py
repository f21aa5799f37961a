"""resilience_kit: resilience primitives for Python services.

The public API is re-exported here; everything in a ``_``-prefixed module is private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from resilience_kit._retry.decorator import retry
    from resilience_kit._timeout import timeout
    from resilience_kit.breaker.redis_storage import RedisStorage
    from resilience_kit.composition import resilient
    from resilience_kit.retry import (
        BEST_EFFORT,
        DATABASE,
        EXTERNAL_API,
        INTERACTIVE,
        INTERNAL_API,
        REDIS,
        RetryEvent,
        RetryPolicy,
        RetryStats,
        reset_retry_stats,
        retry_stats,
    )
else:
    # The retry layer (and tenacity under it) loads on first use: code that needs only a
    # breaker, such as the pytest plugin at every pytest start, does not pay for it. Hidden
    # from type checkers, which would otherwise take any attribute of the package as valid.
    _LAZY = dict.fromkeys(
        (
            "BEST_EFFORT",
            "DATABASE",
            "EXTERNAL_API",
            "INTERACTIVE",
            "INTERNAL_API",
            "REDIS",
            "RetryEvent",
            "RetryPolicy",
            "RetryStats",
            "reset_retry_stats",
            "retry_stats",
        ),
        "resilience_kit.retry",
    )
    _LAZY["resilient"] = "resilience_kit.composition"
    _LAZY["timeout"] = "resilience_kit._timeout"
    _LAZY["RedisStorage"] = "resilience_kit.breaker.redis_storage"

    def __getattr__(name: str) -> Any:
        if name == "retry":
            # The module itself, which is callable as the decorator: see retry.py. Importing
            # it binds it here as the package's attribute.
            return importlib.import_module("resilience_kit.retry")
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


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
    "RetryEvent",
    "RetryStats",
    "retry",
    "retry_stats",
    "reset_retry_stats",
    "DATABASE",
    "REDIS",
    "EXTERNAL_API",
    "INTERNAL_API",
    "BEST_EFFORT",
    "INTERACTIVE",
    # composition
    "resilient",
    "timeout",
    "BreakerStats",
    "BreakerListener",
    "BreakerStorage",
    "MemoryStorage",
    "RedisStorage",
    "breakers",
    "get_breaker",
]
