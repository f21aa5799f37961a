"""Per-call cost under concurrency: threads sharing one breaker, asyncio tasks sharing one."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks._harness import Context, Prepared, Section, Tasks, Threads
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import RESULT, ayielding, work

THREADS = (1, 4, 16, 64)
TASKS = (1, 100, 1_000, 10_000)

SECTION = Section(
    "concurrency",
    "Breakers under concurrency",
    "One CLOSED breaker shared by every worker. Threads: N threads each make N-th of the calls "
    "(wall time from the first thread's start to the last one's end; the GIL serialises them, "
    "so this shows lock contention and hand-offs, not parallel speed-up). Tasks: N asyncio "
    "tasks in one loop, each call awaiting a function that yields once (`asyncio.sleep(0)`), "
    "so N calls are in flight at once; the baseline awaits the same function unguarded.",
    order=80,
    requires=("resilience_kit.breaker",),
    chart="lines",
    x_label="workers",
    rounds_factor=0.5,
)


def _plain(fn: Callable[..., object]) -> Callable[[Context], Prepared]:
    def setup(ctx: Context) -> Prepared:
        return Prepared(fn, returns=RESULT)

    return setup


for threads in THREADS:
    group = SECTION.group(
        f"threads_{threads}",
        f"{threads} threads",
        Threads(threads),
        param=threads,
        series="threads sharing one breaker",
    )
    group.baseline("plain call")(_plain(work))
    for adapter in (b.OURS, b.PYBREAKER, b.CIRCUITBREAKER, b.PURGATORY_SYNC, b.PYRESILIENCE):
        group.add(adapter.label, adapter.library)(b.closed_case(adapter, work))

for tasks in TASKS:
    group = SECTION.group(
        f"tasks_{tasks}",
        f"{tasks} asyncio tasks",
        Tasks(tasks),
        param=tasks,
        series="asyncio tasks sharing one breaker",
        quick_count=tasks < 10_000,
    )
    group.baseline("plain await")(_plain(ayielding))
    for adapter in (b.OURS, b.CIRCUITBREAKER, b.PURGATORY_ASYNC, b.AIOBREAKER, b.PYRESILIENCE):
        group.add(adapter.label, adapter.library)(b.closed_case(adapter, ayielding))
