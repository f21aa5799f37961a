"""Cost against the number of breakers that exist: calling one of them, or each in turn."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from benchmarks._harness import Context, Prepared, Section, SyncLoop
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import RESULT, expect, work

SIZES = (1, 10, 100, 1_000, 10_000)

SECTION = Section(
    "scale_breakers",
    "Breakers: cost against how many exist",
    "N breakers exist, each wrapping its own function (CLOSED). *one*: every call goes through "
    "the first breaker; *round-robin*: calls cycle through all N (the baseline cycles through "
    "N plain functions the same way). A registry, a global lock or a per-name lookup would show "
    "here as a ratio growing with N.",
    order=70,
    requires=("resilience_kit.breaker",),
    chart="lines",
    x_label="breakers",
    rounds_factor=0.5,
)


def _plain(n: int, round_robin: bool) -> Callable[[Context], Prepared]:
    def setup(ctx: Context) -> Prepared:
        if not round_robin:
            return Prepared(work, returns=RESULT)
        return Prepared(_round_robin([_own_work() for _ in range(n)]), returns=RESULT)

    return setup


def _round_robin(functions: list[Callable[[], Any]]) -> Callable[[], Any]:
    following = itertools.cycle(functions).__next__

    def call_next() -> Any:
        return following()()

    return call_next


def _own_work() -> Callable[[], Any]:
    def own() -> Any:
        return RESULT

    return own


def _many(adapter: b.Adapter, n: int, round_robin: bool) -> Callable[[Context], Prepared]:
    def setup(ctx: Context) -> Prepared:
        built = [adapter.build(ctx, 5, 60.0) for _ in range(n)]
        guarded = [each.decorate(_own_work()) for each in built]
        first_state = built[0].state

        def check() -> None:
            if first_state is not None:
                expect(first_state() == "closed", "the first breaker should be closed")

        def close() -> None:
            # Holding every breaker until the group is done keeps the N of "N exist" true
            # (a registry that holds breakers weakly would otherwise let them go at once).
            guarded.clear()
            built.clear()

        op = _round_robin(guarded) if round_robin else guarded[0]
        return Prepared(op, returns=RESULT, check=check, close=close)

    return setup


for round_robin in (False, True):
    mode = "round-robin" if round_robin else "one"
    series = "calling each in turn (round-robin)" if round_robin else "calling one of them"
    for size in SIZES:
        group = SECTION.group(
            f"{mode}_{size}",
            f"{size} breakers, {mode}",
            SyncLoop(),
            param=size,
            series=series,
            quick_count=size < 10_000,
        )
        group.baseline("plain call" if not round_robin else "plain functions, round-robin")(
            _plain(size, round_robin)
        )
        for adapter in (b.OURS, b.PYBREAKER, b.CIRCUITBREAKER, b.PYRESILIENCE):
            group.add(adapter.label, adapter.library)(_many(adapter, size, round_robin))
