"""Retry: the added cost of the success path (the first attempt succeeds), alone and composed
with a circuit breaker."""

from __future__ import annotations

from benchmarks._harness import OURS, AsyncLoop, Context, Prepared, Section, SyncLoop
from benchmarks.sections import _retries as r
from benchmarks.sections._common import RESULT, awork, work
from benchmarks.sections._retry_cases import (
    PYRESILIENCE,
    RESILIENT,
    TENACITY_PYBREAKER,
    composed_case,
    success_case,
)

SECTION = Section(
    "retry",
    "Retry, success path",
    "Each library wraps the same function with a 3-attempt exponential policy retrying "
    "`ValueError`; the function never fails, so this is the price every successful call pays. "
    "Where a library counts attempts (resilience_kit's `retry_stats()`, tenacity's "
    "`statistics`), verification checks the call took exactly one. *Breaker + retry*: the "
    "same policy around a CLOSED breaker (threshold 5, 60 s recovery) guarding each attempt: "
    "resilience_kit's `resilient(breaker=..., retry=...)`, and as the peers' equivalent "
    "tenacity's `@retry` stacked on pybreaker's decorator (sync only: pybreaker has no async "
    "decorator without Tornado), and pyresilience's `@resilient(circuit_breaker=..., retry=...)`, "
    "its one decorator for every pattern; verification also checks the breaker stayed CLOSED.",
    order=20,
    requires=("resilience_kit.retry", "resilience_kit.breaker", "resilience_kit.composition"),
)

success_sync = SECTION.group("success_sync", "Success, sync", SyncLoop())
success_async = SECTION.group("success_async", "Success, async", AsyncLoop())
composed_sync = SECTION.group("composed_sync", "Breaker + retry, success, sync", SyncLoop())
composed_async = SECTION.group("composed_async", "Breaker + retry, success, async", AsyncLoop())


def _plain_call(ctx: Context) -> Prepared:
    return Prepared(work, returns=RESULT)


def _plain_await(ctx: Context) -> Prepared:
    return Prepared(awork, returns=RESULT)


for sync_group, async_group in ((success_sync, success_async), (composed_sync, composed_async)):
    sync_group.baseline("plain call")(_plain_call)
    async_group.baseline("plain await")(_plain_await)

for adapter in r.ALL:
    success_sync.add(adapter.label, adapter.library)(success_case(adapter, work))
    success_async.add(adapter.label, adapter.library)(success_case(adapter, awork))

OURS_COMPOSED = "resilience_kit resilient(breaker, retry)"
composed_sync.add(OURS_COMPOSED, OURS)(composed_case(RESILIENT, work))
composed_async.add(OURS_COMPOSED, OURS)(composed_case(RESILIENT, awork))
composed_sync.add("tenacity @retry over pybreaker (stacked)", "tenacity + pybreaker")(
    composed_case(TENACITY_PYBREAKER, work)
)
PYRESILIENCE_COMPOSED = "pyresilience @resilient(circuit_breaker, retry)"
composed_sync.add(PYRESILIENCE_COMPOSED, "pyresilience")(composed_case(PYRESILIENCE, work))
composed_async.add(PYRESILIENCE_COMPOSED, "pyresilience")(composed_case(PYRESILIENCE, awork))

SECTION.target("success_sync", "resilience_kit", 250, "Retry, success path, sync")
SECTION.target("success_async", "resilience_kit", 300, "Retry, success path, async")
