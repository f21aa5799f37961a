"""Retry policies, presets, statistics and the ``@retry`` decorator (implementation).

The public names live in [resilience_kit.retry][]; this package holds the machinery, one
module per responsibility: ``policy`` (the frozen value and ``from_env``), ``presets``,
``stats``, ``log`` (redacted log records), ``sleeps`` (sleeping and ``no_waits``), ``loop``
(the retries after a first failure) and ``decorator``.

tenacity runs every retry: the waits, the stop conditions, the retry predicate, the sleeping.
What this package adds is a frozen policy object, presets, exact statistics, logging with
redaction, a deadline read from the library's clock, and a first attempt that costs almost
nothing: the wrapper calls the function directly and only a failure that the policy retries
builds a tenacity loop, seeded with that first failure as attempt 1.
"""

from __future__ import annotations

from resilience_kit._retry.decorator import _decorate, retry
from resilience_kit._retry.policy import RetryEvent, RetryPolicy
from resilience_kit._retry.presets import (
    BEST_EFFORT,
    DATABASE,
    EXTERNAL_API,
    INTERACTIVE,
    INTERNAL_API,
    PRESETS,
    REDIS,
    _resolve,
    transient_error,
)
from resilience_kit._retry.sleeps import _NO_WAITS
from resilience_kit._retry.stats import RetryStats, reset_retry_stats, retry_stats

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
    "_NO_WAITS",
    "_decorate",
    "_resolve",
    "reset_retry_stats",
    "retry",
    "retry_stats",
    "transient_error",
]
