"""Circuit breaker: the added cost of a call through a CLOSED breaker and of an OPEN rejection."""

from __future__ import annotations

from benchmarks._harness import AsyncLoop, Context, Prepared, Section, SyncLoop
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import RESULT, afail, awork, fail, work

SECTION = Section(
    "breaker",
    "Circuit breaker",
    "Every library wraps the same function with its decorator. CLOSED: the call goes through "
    "(threshold 5 failures, 60 s recovery). OPEN: the breaker was tripped by one failure and "
    "rejects with its own error before the function runs; the baseline raises and catches a "
    "plain `ValueError` in the same loop. pybreaker has no async decorator without Tornado; "
    "aiobreaker is async only.",
    order=10,
    requires=("resilience_kit.breaker",),
)

closed_sync = SECTION.group("closed_sync", "CLOSED, sync call", SyncLoop())
closed_async = SECTION.group("closed_async", "CLOSED, async call", AsyncLoop())
open_sync = SECTION.group("open_sync", "OPEN, sync rejection", SyncLoop(raises=True))
open_async = SECTION.group("open_async", "OPEN, async rejection", AsyncLoop(raises=True))


@closed_sync.baseline("plain call")
def _plain_call(ctx: Context) -> Prepared:
    return Prepared(work, returns=RESULT)


@closed_async.baseline("plain await")
def _plain_await(ctx: Context) -> Prepared:
    return Prepared(awork, returns=RESULT)


@open_sync.baseline("plain raise+catch")
def _plain_raise(ctx: Context) -> Prepared:
    return Prepared(fail, raises=ValueError)


@open_async.baseline("plain await raise+catch")
def _plain_await_raise(ctx: Context) -> Prepared:
    return Prepared(afail, raises=ValueError)


for adapter in b.ALL:
    if adapter.sync:
        closed_sync.add(adapter.label, adapter.library)(b.closed_case(adapter, work))
        open_sync.add(adapter.label, adapter.library)(b.open_case(adapter, fail))
    if adapter.asynchronous:
        closed_async.add(adapter.label, adapter.library)(b.closed_case(adapter, awork))
        open_async.add(adapter.label, adapter.library)(b.open_case(adapter, afail))

SECTION.target("closed_sync", "resilience_kit", 150, "Breaker, CLOSED, sync call")
SECTION.target("closed_async", "resilience_kit", 200, "Breaker, CLOSED, async call")
SECTION.target("open_sync", "resilience_kit", 300, "Breaker, OPEN rejection, sync")
SECTION.target("open_async", "resilience_kit", 300, "Breaker, OPEN rejection, async")
