"""Circuit breaker: the added cost of a call through a CLOSED breaker and of an OPEN rejection,
raised or answered by a fallback."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from benchmarks._harness import OURS, AsyncLoop, Context, Prepared, Section, SyncLoop
from benchmarks.sections import _breakers as b
from benchmarks.sections._common import RESULT, afail, awork, expect, fail, ours, work

SECTION = Section(
    "breaker",
    "Circuit breaker",
    "Every library wraps the same function with its decorator. CLOSED: the call goes through "
    "(threshold 5 failures, 60 s recovery). *failure_rate window*: resilience_kit's rate policy "
    "(open at 50 % failures over a 60 s time window, judged from 10 calls), next to "
    "pyresilience's (50 % of the last 100 calls); *pass-through decorator* is a "
    "`functools.wraps` wrapper that only calls the function: the least any decorator costs. "
    "OPEN: the breaker was tripped by one failure and rejects with its own error before the "
    "function runs; the baseline raises and catches a plain `ValueError` in the same loop. "
    "*OPEN, answered by fallback*: the same rejection answered by the library's fallback "
    "(verification checks the function did not run and the fallback's value came back); the "
    "baseline calls a function returning that value. pybreaker has no async decorator without "
    "Tornado and no fallback; aiobreaker is async only.",
    order=10,
    requires=("resilience_kit.breaker",),
)

closed_sync = SECTION.group("closed_sync", "CLOSED, sync call", SyncLoop())
closed_async = SECTION.group("closed_async", "CLOSED, async call", AsyncLoop())
open_sync = SECTION.group("open_sync", "OPEN, sync rejection", SyncLoop(raises=True))
open_async = SECTION.group("open_async", "OPEN, async rejection", AsyncLoop(raises=True))
fallback_sync = SECTION.group("fallback_sync", "OPEN, sync, answered by fallback", SyncLoop())
fallback_async = SECTION.group("fallback_async", "OPEN, async, answered by fallback", AsyncLoop())

FALLBACK = ("fallback",)
WRAPPER_ONLY = "pass-through decorator"
OURS_FALLBACK = "resilience_kit, fallback"


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


def _answer() -> tuple[str]:
    return FALLBACK


async def _aanswer() -> tuple[str]:
    return FALLBACK


@fallback_sync.baseline("plain call of the fallback")
def _plain_answer(ctx: Context) -> Prepared:
    return Prepared(_answer, returns=FALLBACK)


@fallback_async.baseline("plain await of the fallback")
def _plain_aanswer(ctx: Context) -> Prepared:
    return Prepared(_aanswer, returns=FALLBACK)


@closed_sync.add(WRAPPER_ONLY, "reference")
def _pass_through(ctx: Context) -> Prepared:
    @functools.wraps(work)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return work(*args, **kwargs)

    return Prepared(wrapper, returns=RESULT)


@closed_async.add(WRAPPER_ONLY, "reference")
def _apass_through(ctx: Context) -> Prepared:
    @functools.wraps(awork)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await awork(*args, **kwargs)

    return Prepared(wrapper, returns=RESULT)


for adapter in (*b.ALL, b.OURS_RATE, b.PYRESILIENCE_WINDOW):
    rate = adapter in (b.OURS_RATE, b.PYRESILIENCE_WINDOW)
    if adapter.sync:
        closed_sync.add(adapter.label, adapter.library)(b.closed_case(adapter, work))
        if not rate:
            open_sync.add(adapter.label, adapter.library)(b.open_case(adapter, fail))
    if adapter.asynchronous:
        closed_async.add(adapter.label, adapter.library)(b.closed_case(adapter, awork))
        if not rate:
            open_async.add(adapter.label, adapter.library)(b.open_case(adapter, afail))


def _fallback_case(
    build: Callable[[Context, Callable[..., Any]], b.Built], is_async: bool
) -> Callable[[Context], Prepared]:
    """A setup: a breaker tripped OPEN whose rejections the fallback answers.

    Verified: the fallback's value comes back, the breaker is OPEN and the function did not run
    (a failure would be answered by the fallback too, so only the counter tells them apart).
    """

    def setup(ctx: Context) -> Prepared:
        calls = [0]

        def fn() -> None:
            calls[0] += 1
            raise ValueError("boom")

        async def afn() -> None:
            calls[0] += 1
            raise ValueError("boom")

        built = build(ctx, _aanswer_any if is_async else _answer_any)
        op = built.decorate(afn if is_async else fn)
        with contextlib.suppress(Exception):  # the failure that trips it, answered or not
            ctx.resolve(op())
        expect(calls[0] == 1, "the tripping call should have run the function")
        state = b.state_check(built, "open")

        def reset() -> None:
            calls[0] = 0

        def check() -> None:
            expect(calls[0] == 0, f"the OPEN breaker ran the function {calls[0]} time(s)")
            if state is not None:
                state()

        return Prepared(op, returns=FALLBACK, check=check, reset=reset, close=built.close)

    return setup


def _answer_any(*args: Any, **kwargs: Any) -> tuple[str]:
    return FALLBACK


async def _aanswer_any(*args: Any, **kwargs: Any) -> tuple[str]:
    return FALLBACK


def _ours_fallback(ctx: Context, fallback: Callable[..., Any]) -> b.Built:
    circuit_breaker = ours("resilience_kit", "CircuitBreaker")
    open_error = ours("resilience_kit", "CircuitOpenError")
    breaker = circuit_breaker(
        ctx.unique("rk-fallback"), failure_threshold=1, recovery_timeout=3600.0, fallback=fallback
    )
    return b.Built(breaker, open_error, lambda: str(breaker.state).lower())


def _circuitbreaker_fallback(ctx: Context, fallback: Callable[..., Any]) -> b.Built:
    import circuitbreaker

    breaker = circuitbreaker.CircuitBreaker(
        failure_threshold=1,
        recovery_timeout=3600.0,
        name=ctx.unique("cb-fallback"),
        fallback_function=fallback,
    )
    return b.Built(breaker, circuitbreaker.CircuitBreakerError, lambda: str(breaker.state))


def _pyresilience_fallback(ctx: Context, fallback: Callable[..., Any]) -> b.Built:
    import pyresilience

    return b.pyresilience_built(
        ctx,
        circuit_breaker=pyresilience.CircuitBreakerConfig(
            failure_threshold=1, recovery_timeout=3600.0
        ),
        fallback=pyresilience.FallbackConfig(handler=fallback),  # it gets the exception
    )


for label, library, build in (
    (OURS_FALLBACK, OURS, _ours_fallback),
    ("circuitbreaker, fallback_function", "circuitbreaker", _circuitbreaker_fallback),
    ("pyresilience, FallbackConfig", "pyresilience", _pyresilience_fallback),
):
    fallback_sync.add(label, library)(_fallback_case(build, is_async=False))
    fallback_async.add(label, library)(_fallback_case(build, is_async=True))

SECTION.target("closed_sync", "resilience_kit", 150, "Breaker, CLOSED, sync call")
SECTION.target("closed_async", "resilience_kit", 200, "Breaker, CLOSED, async call")
SECTION.target("open_sync", "resilience_kit", 300, "Breaker, OPEN rejection, sync")
SECTION.target("open_async", "resilience_kit", 300, "Breaker, OPEN rejection, async")

# Issue 10's targets, judged on instruction counts (``--instructions``).
for group, kind in (("closed_sync", "sync"), ("closed_async", "async")):
    SECTION.instruction_target(
        f"failure_rate window ≤ 2.5x a pass-through decorator, {kind} (added instructions)",
        case=(group, b.OURS_RATE.label),
        reference=(group, WRAPPER_ONLY),
        max_ratio=2.5,
    )
for fallback_group, open_group, kind in (
    ("fallback_sync", "open_sync", "sync"),
    ("fallback_async", "open_async", "async"),
):
    SECTION.instruction_target(
        f"OPEN rejection answered by fallback < raised and caught, {kind} (instructions per call)",
        case=(fallback_group, OURS_FALLBACK),
        reference=(open_group, "resilience_kit"),
        max_ratio=1.0,
        measure="total",
        strict=True,
    )
