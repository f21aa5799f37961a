"""A breaker's call, step by step: admission, rejection and the fallback, outcomes.

The general path (``general_call``/``general_call_async``, the breaker's ``_call`` and
``_call_async``), ``with breaker:`` blocks and the decorator's wrappers all go through these
steps; the class binds them as its methods
(``_admit``, ``_failed``, ``_succeeded``, ...), so a wrapper holding one calls it as directly
as a method defined in the class. A state change made here is queued under the lock
(``settle``) and delivered to listeners once it is released (``deliver``).
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from resilience_kit.breaker._fallback import answer, resolve
from resilience_kit.breaker._listeners import (
    ERROR,
    FLAGGED,
    SLOW,
    SUCCESS,
    TIME,
    deliver,
    notify,
    settle,
)
from resilience_kit.breaker._machine import HALF_OPEN, LOCK, REJECT, Period
from resilience_kit.breaker._windows import FailureRateWindow
from resilience_kit.breaker.storage import read_count
from resilience_kit.errors import CircuitOpenError

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = [
    "NO_RESULT",
    "admit",
    "failed",
    "flags",
    "general_call",
    "general_call_async",
    "late_success",
    "not_awaitable",
    "not_awaited",
    "record_failure",
    "record_success",
    "reject",
    "rejection",
    "succeeded",
    "unrecorded",
    "use_fallback",
]

R = TypeVar("R")

_logger = logging.getLogger("resilience_kit.breaker")

_COROUTINE = types.CoroutineType
# Builds a rejection without CircuitOpenError's Python-level __init__ (see errors.py).
_new_error = BaseException.__new__
# The result of a ``with`` block, which has none: ``failure_if`` is not asked about it.
NO_RESULT = object()


def general_call(
    breaker: CircuitBreaker,
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    now: float,
    *,
    own_fallback: bool = True,
) -> R:
    """The general path of a call (``call()``, and every decorated call the wrappers' fast
    path does not settle): synchronise a shared state, admit, run, judge the outcome.

    ``own_fallback=False``: raise instead of answering with ``fallback``, for resilient(),
    which retries the failure first and falls back only on the final outcome.
    """
    cell = breaker._cell
    if cell.remote:
        cell.pull(now)
    ticket = admit(breaker, now)
    if ticket is REJECT:
        if not own_fallback:
            raise rejection(breaker, now)
        return reject(breaker, now, args, kwargs)  # type: ignore[no-any-return]
    try:
        result = fn(*args, **kwargs)
    except BaseException as error:
        fall_back = failed(breaker, error, ticket, now) and own_fallback
        if cell.remote:
            cell.push(breaker._monotonic())
        if fall_back:
            return use_fallback(breaker, error, args, kwargs)  # type: ignore[no-any-return]
        raise
    if type(result) is _COROUTINE:
        not_awaited(breaker, fn, result, ticket)
    succeeded(breaker, result, ticket, now)
    if cell.remote:
        cell.push(breaker._monotonic())
    return result


async def general_call_async(
    breaker: CircuitBreaker,
    fn: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    now: float,
    *,
    own_fallback: bool = True,
) -> R:
    """``general_call`` for an awaitable ``fn`` (``call_async()``, async wrappers)."""
    cell = breaker._cell
    if cell.remote:
        await cell.pull_async(now)
    ticket = admit(breaker, now)
    if ticket is REJECT:
        if not own_fallback:
            raise rejection(breaker, now)
        return await resolve(reject(breaker, now, args, kwargs))  # type: ignore[no-any-return]
    try:
        awaitable = fn(*args, **kwargs)
        awaited = type(awaitable) is _COROUTINE or inspect.isawaitable(awaitable)
        if awaited:
            result = await awaitable
    except BaseException as error:
        fall_back = failed(breaker, error, ticket, now) and own_fallback
        if cell.remote:
            await cell.push_async(breaker._monotonic())
        if fall_back:
            return await resolve(use_fallback(breaker, error, args, kwargs))  # type: ignore[no-any-return]
        raise
    if not awaited:
        not_awaitable(breaker, fn, awaitable, ticket)
    succeeded(breaker, result, ticket, now)
    if cell.remote:
        await cell.push_async(breaker._monotonic())
    return result


def admit(breaker: CircuitBreaker, now: float) -> Period:
    """Admit a call now: its period (a ticket for the outcome), or ``REJECT``."""
    machine = breaker._machine
    ticket = machine.peek(now)
    if ticket is LOCK:
        with breaker._lock:
            old = machine.state
            ticket = machine.admit(now)
            settle(breaker, old, TIME)
        if breaker._cell.outbox:
            deliver(breaker)
    return ticket


def rejection(breaker: CircuitBreaker, now: float) -> CircuitOpenError:
    """Count and report a rejected call; the error to raise or to give ``fallback``."""
    next(breaker._cell.rejected)
    if breaker._on_rejected:
        notify(breaker._on_rejected, "on_rejected", breaker)
    machine = breaker._machine
    error: CircuitOpenError = _new_error(
        CircuitOpenError, breaker.name, machine.retry_after(now), machine.state
    )
    return error


def reject(
    breaker: CircuitBreaker, now: float, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Turn a call away: the fallback's answer, or raise
    [`CircuitOpenError`][resilience_kit.CircuitOpenError]."""
    error = rejection(breaker, now)
    if breaker._fallback is None:
        raise error
    return use_fallback(breaker, error, args, kwargs)


def use_fallback(
    breaker: CircuitBreaker, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The fallback's answer to a call that was rejected or failed with ``error``."""
    fallback = cast("Callable[..., Any]", breaker._fallback)
    return answer(fallback, breaker._accepts_error, error, args, kwargs)


def failed(breaker: CircuitBreaker, error: BaseException, ticket: Period, started: float) -> bool:
    """Handle a call that raised ``error``; True when ``fallback`` should answer it."""
    if (
        isinstance(error, Exception)
        and isinstance(error, breaker._failure_on)
        and not isinstance(error, breaker._ignore)
    ):
        now = breaker._monotonic()
        record_failure(breaker, ticket, now, now - started, ERROR, error)
        return breaker._fallback is not None
    # Not an outcome that counts (ignored, unlisted, or KeyboardInterrupt and friends): the
    # trial slot, if it held one, goes back, or HALF_OPEN would wait for it forever.
    unrecorded(breaker, ticket)
    return False


def unrecorded(breaker: CircuitBreaker, ticket: Period) -> None:
    """A call ended without an outcome that counts: total it, give back its trial slot."""
    next(breaker._cell.unrecorded)
    # Only a trial holds a slot; if the state has moved on since, release() ignores it.
    if breaker._machine.state is HALF_OPEN:
        with breaker._lock:
            breaker._machine.release(ticket)


def not_awaited(
    breaker: CircuitBreaker, fn: Callable[..., Any], result: Any, ticket: Period
) -> None:
    """A call run as a plain function returned a coroutine: nothing ran that can be judged."""
    result.close()  # never awaited: close it, so Python does not warn about it
    unrecorded(breaker, ticket)
    raise TypeError(
        f"circuit breaker {breaker.name!r} called {fn!r} as a plain function and got a "
        "coroutine back, so the call has not run yet and has no outcome to count; the "
        "coroutine was closed and nothing was counted. Decorate the async def itself (or "
        "an object with async def __call__), or use `await breaker.call_async(fn, ...)`"
    )


def not_awaitable(
    breaker: CircuitBreaker, fn: Callable[..., Any], result: Any, ticket: Period
) -> None:
    """``call_async`` got a result that cannot be awaited: the pairing is wrong."""
    unrecorded(breaker, ticket)
    raise TypeError(
        f"circuit breaker {breaker.name!r} was asked to await {fn!r} (call_async), but it "
        f"returned {type(result).__name__!r}, which is not awaitable: it ran as a plain "
        "function, and nothing was counted. Use `breaker.call(fn, ...)` for a plain "
        "function, or pass the async def itself to call_async"
    )


def late_success(
    breaker: CircuitBreaker, fn: Callable[..., Any] | None, result: Any, ticket: Period
) -> Any:
    """The end of a fast-path call that the fast path could not settle: a sync ``fn``
    that returned a coroutine, or a success that needs judging after all (a failure was
    recorded while it ran, the rate window's bucket ended, or the period it was admitted
    in is over)."""
    if fn is not None and type(result) is _COROUTINE:
        not_awaited(breaker, fn, result, ticket)
    # The rate policy's hot path counts a success only when it takes it without the lock.
    record_success(breaker, breaker._monotonic(), ticket, count=breaker._window is not None)
    return result


def succeeded(breaker: CircuitBreaker, result: Any, ticket: Period, started: float) -> None:
    # One clock read per call unless the end time matters (see _ends_timed).
    now = breaker._monotonic() if breaker._ends_timed else started
    duration = now - started
    slow = breaker._slow
    if slow is not None and duration > slow:
        record_failure(breaker, ticket, now, duration, SLOW, duration)
        return
    if result is not NO_RESULT and breaker._failure_if is not None:
        try:
            flagged = flags(breaker, result)
        except BaseException:
            # KeyboardInterrupt (a signal) or the like, in the predicate: no outcome.
            unrecorded(breaker, ticket)
            raise
        if flagged:
            if not breaker._ends_timed:
                now = breaker._monotonic()
            record_failure(breaker, ticket, now, duration, FLAGGED, result)
            return
    cell = breaker._cell
    if breaker._window is None:
        next(cell.successes)
    try:
        # The outcome is reported before the transition it may cause.
        if breaker._on_success:
            notify(breaker._on_success, "on_success", breaker, duration)
    finally:
        # Even if a listener raised SystemExit: the success is in the totals, so the
        # machine hears it too (and a trial gives back its slot). Without the lock when
        # nothing needs judging: the rate window's tally, or nothing at all.
        if breaker._window is None:
            if ticket is not cell.clean:
                record_success(breaker, now, ticket)
        elif now < ticket.until and not cell.remote:
            next(cell.successes)  # counted without the lock: see Period.until
        else:
            record_success(breaker, now, ticket, count=True)


def record_success(
    breaker: CircuitBreaker, now: float, ticket: Period, *, count: bool = False
) -> None:
    """Record a success under the lock; ``count`` steps the lifetime total there too (the
    rate policy, whose lock-free successes are told from the others by that counter)."""
    machine = breaker._machine
    with breaker._lock:
        if count:
            cast("FailureRateWindow", breaker._window).count_success()
        old = machine.state
        machine.success(now, ticket)
        settle(breaker, old, SUCCESS)
    cell = breaker._cell
    if cell.outbox:
        deliver(breaker)
    if cell.remote:  # a success that ends a run of failures (fast path included)
        cell.push(now)


def flags(breaker: CircuitBreaker, result: Any) -> bool:
    predicate = breaker._failure_if
    if predicate is None:
        return False
    try:
        return bool(predicate(result))
    except Exception:
        _logger.exception("failure_if of breaker %r failed; counting a success", breaker.name)
        return False


def record_failure(  # noqa: PLR0917 - the breaker, then the method's five
    breaker: CircuitBreaker, ticket: Period, now: float, duration: float, kind: int, detail: Any
) -> None:
    """Count a failure: ``kind`` is ``ERROR`` (``detail`` the exception), ``SLOW`` or
    ``FLAGGED`` (``detail`` the duration or the result)."""
    cell = breaker._cell
    machine = breaker._machine
    next(cell.failures)
    try:
        if breaker._on_failure:
            error = detail if kind == ERROR else None
            notify(breaker._on_failure, "on_failure", breaker, error, duration)
    finally:
        # Even if a listener raised SystemExit: the machine hears the counted failure.
        with breaker._lock:
            cell.success_mark = read_count(cell.successes)
            cell.last_failure = now
            old = machine.state
            machine.failure(now, ticket)
            settle(breaker, old, kind, detail)
        if cell.outbox:
            deliver(breaker)
        if cell.remote:  # in the store before the call returns, fast path included
            cell.push(now)
