"""Retry: the added cost of the success path, where the first attempt succeeds."""

from __future__ import annotations

from benchmarks._harness import AsyncLoop, Context, Prepared, Section, SyncLoop
from benchmarks.sections import _retries as r
from benchmarks.sections._common import RESULT, awork, work
from benchmarks.sections._retry_cases import success_case

SECTION = Section(
    "retry",
    "Retry, success path",
    "Each library wraps the same function with a 3-attempt exponential policy retrying "
    "`ValueError`; the function never fails, so this is the price every successful call pays. "
    "Where a library counts attempts (resilience_kit's `retry_stats()`, tenacity's "
    "`statistics`), verification checks the call took exactly one.",
    order=20,
)

success_sync = SECTION.group("success_sync", "Success, sync", SyncLoop())
success_async = SECTION.group("success_async", "Success, async", AsyncLoop())


@success_sync.baseline("plain call")
def _plain_call(ctx: Context) -> Prepared:
    return Prepared(work, returns=RESULT)


@success_async.baseline("plain await")
def _plain_await(ctx: Context) -> Prepared:
    return Prepared(awork, returns=RESULT)


for adapter in r.ALL:
    success_sync.add(adapter.label, adapter.library)(success_case(adapter, work))
    success_async.add(adapter.label, adapter.library)(success_case(adapter, awork))

SECTION.target("success_sync", "resilience_kit", 250, "Retry, success path, sync")
SECTION.target("success_async", "resilience_kit", 300, "Retry, success path, async")
