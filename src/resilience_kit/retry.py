"""Retry policies, presets and the ``@retry`` decorator, on tenacity.

This module is also the decorator: ``resilience_kit.retry`` is one object whichever way it is
reached, so ``from resilience_kit import retry; @retry("database")`` and
``import resilience_kit.retry; resilience_kit.retry.DATABASE`` both work, in any import order.

Why: the package re-exports the decorator under the module's own name. Had the package
attribute been the function, ``import resilience_kit.retry as r`` (which reads that attribute)
would give the function, and ``mock.patch("resilience_kit.retry.X")`` would patch the function
instead of the module. Instead, the attribute stays the module and the module is callable; type
checkers see the decorator's typed signature through ``resilience_kit.__init__``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from resilience_kit._retry.decorator import retry
from resilience_kit._retry.policy import RetryEvent, RetryPolicy
from resilience_kit._retry.presets import (
    BEST_EFFORT,
    DATABASE,
    EXTERNAL_API,
    INTERACTIVE,
    INTERNAL_API,
    PRESETS,
    REDIS,
    transient_error,
)
from resilience_kit._retry.stats import RetryStats, reset_retry_stats, retry_stats
from resilience_kit._transient import (
    http_status,
    parse_retry_after,
    retry_after_from_response,
    retryable_http_error,
    retryable_http_response,
    transient_database_error,
    transient_redis_error,
)

__all__ = [
    "BEST_EFFORT",
    "DATABASE",
    "EXTERNAL_API",
    "INTERACTIVE",
    "INTERNAL_API",
    "PRESETS",
    "REDIS",
    "RetryEvent",
    "RetryPolicy",
    "RetryStats",
    "http_status",
    "parse_retry_after",
    "reset_retry_stats",
    "retry",
    "retry_after_from_response",
    "retry_stats",
    "retryable_http_error",
    "retryable_http_response",
    "transient_database_error",
    "transient_error",
    "transient_redis_error",
]


class _CallableModule(types.ModuleType):
    """This module's type: calling the module calls [`retry()`][resilience_kit.retry.retry]."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return retry(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
