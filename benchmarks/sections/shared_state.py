"""Shared-state breakers: a breaker whose state lives in Redis, shared by every process."""

from __future__ import annotations

from benchmarks._harness import Context, Prepared, Section, SyncLoop
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import RESULT, fail, work

SECTION = Section(
    "shared_state",
    "Shared-state breaker (Redis)",
    "The breaker's state is kept in the local Redis (db 14) so that every process shares it. "
    "pybreaker's `CircuitRedisStorage` reads and writes Redis on every call; the figures are "
    "dominated by those round trips, so the ratio says how many plain calls one guarded call "
    "costs. Same decorators and thresholds as the in-process breaker section.",
    order=50,
    requires=("resilience_kit.breaker",),
    future=("resilience_kit.breaker.redis_storage",),
)

closed = SECTION.group("closed_sync", "CLOSED, sync call", SyncLoop())
opened = SECTION.group("open_sync", "OPEN, sync rejection", SyncLoop(raises=True))


@closed.baseline("plain call")
def _plain_call(ctx: Context) -> Prepared:
    return Prepared(work, returns=RESULT)


@opened.baseline("plain raise+catch")
def _plain_raise(ctx: Context) -> Prepared:
    return Prepared(fail, raises=ValueError)


for adapter in (b.OURS_REDIS, b.PYBREAKER_REDIS):
    closed.add(adapter.label, adapter.library)(b.closed_case(adapter, work))
    opened.add(adapter.label, adapter.library)(b.open_case(adapter, fail))
