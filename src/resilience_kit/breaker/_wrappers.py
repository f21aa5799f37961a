"""The decorator's wrappers: a breaker's hot path, bound into closures.

A decorated call reads ``gate.clean`` (one attribute of the state cell). When it is true
(CLOSED, consecutive policy, no failure pending, and the breaker neither times calls nor
inspects results), a success costs one lock-free counter step and a second read of
``gate.clean``: a failure recorded while the call ran makes the success matter (it ends the run
of failures), and the second read sends it to the general path. Every other case takes the
breaker's general path (``_call``/``_call_async``), which locks only to change the machine's
state.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import ParamSpec

from resilience_kit._callables import adopt_metadata
from resilience_kit.breaker._fallback import resolve
from resilience_kit.breaker._machine import CircuitState
from resilience_kit.errors import CircuitOpenError

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = ["wrap_async", "wrap_sync"]

P = ParamSpec("P")
R = TypeVar("R")

# Constants the wrappers read as globals: a global costs a call nothing until it is read, while
# every closure variable is copied into, and cleared from, each call's frame.
_INF = math.inf
_COROUTINE = types.CoroutineType
# Builds a rejection without CircuitOpenError's Python-level __init__ (see errors.py).
_new_error = BaseException.__new__


class _Pass:
    """The doorman of a breaker whose state lives elsewhere: every call goes to the slow path,
    which synchronises before deciding."""

    __slots__ = ()
    reject_until = -math.inf
    state = CircuitState.CLOSED


_PASS = _Pass()


def _hot_parts(breaker: CircuitBreaker) -> tuple[Any, ...]:
    """What the decorators' hot paths touch, to be bound to locals of their closures.

    Closure cells are the cheapest lookups a wrapper can make; ``_use_clock`` finds the
    clock's cell by its name, ``monotonic``.
    """
    fallback = breaker._fallback
    listened = bool(breaker._on_rejected)
    return (
        breaker._gate,
        _PASS if breaker._cell.remote else breaker._machine,
        breaker._monotonic,
        breaker._cell.successes,
        breaker._window is not None,
        breaker._failed,
        breaker._use_fallback,
        breaker._reject,
        breaker._cell.rejected,
        fallback is None and not listened,
        None if listened else fallback,
        breaker._accepts_error,
        breaker.name,
        breaker._late_success,
    )


def wrap_sync(breaker: CircuitBreaker, fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` guarded by ``breaker``: the decorator's sync wrapper."""
    (
        gate,
        doorman,
        monotonic,
        successes,
        rated,
        failed,
        use_fallback,
        reject,
        rejected,
        quiet,
        direct,
        passes_error,
        name,
        late,
    ) = _hot_parts(breaker)
    general = breaker._call

    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        period = gate.clean  # the period this call is admitted in, or None: the general path
        if period:
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                if failed(error, period, 0.0):
                    return use_fallback(error, args, kwargs)  # type: ignore[no-any-return]
                raise
            if type(result) is not _COROUTINE:
                if rated:
                    # Counted without a lock while its period goes on, no success can trip
                    # the window, and its newest bucket has not ended (Period.until).
                    if monotonic() < period.until:
                        next(successes)
                        return result
                else:
                    next(successes)
                    # Still clean: no failure was recorded while fn ran, so this success
                    # has nothing to reset (or its period is over). Otherwise it must end the
                    # run of failures.
                    if gate.clean:
                        return result
            return late(fn, result, period)  # type: ignore[no-any-return]
        now = monotonic()
        until = doorman.reject_until
        if now < until:
            # Answered here, not in a helper: each frame an exception unwinds through costs
            # about as much as the rest of the rejection, and a fallback that does not take
            # the error is answered without making one. retry_after is
            # Machine.retry_after, inlined for the same reason.
            if quiet:
                next(rejected)
                raise _new_error(
                    CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                )
            if direct is not None:
                next(rejected)
                if passes_error and "error" not in kwargs:
                    rejection = _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                    if kwargs:
                        return direct(*args, **kwargs, error=rejection)  # type: ignore[no-any-return]
                    return direct(*args, error=rejection)  # type: ignore[no-any-return]
                return direct(*args, **kwargs)  # type: ignore[no-any-return]
            return reject(now, args, kwargs)  # type: ignore[no-any-return]
        return general(fn, args, kwargs, now)

    adopt_metadata(guarded, fn)
    breaker._wrappers.add(guarded)
    return guarded


def wrap_async(breaker: CircuitBreaker, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``fn`` guarded by ``breaker``: the decorator's async wrapper (as the sync one)."""
    (
        gate,
        doorman,
        monotonic,
        successes,
        rated,
        failed,
        use_fallback,
        reject,
        rejected,
        quiet,
        direct,
        passes_error,
        name,
        late,
    ) = _hot_parts(breaker)
    general = breaker._call_async

    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        period = gate.clean
        if period:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                if failed(error, period, 0.0):
                    return await resolve(use_fallback(error, args, kwargs))  # type: ignore[no-any-return]
                raise
            if rated:
                if monotonic() < period.until:
                    next(successes)
                    return result
            else:
                next(successes)
                if gate.clean:
                    return result
            return late(None, result, period)  # type: ignore[no-any-return]
        now = monotonic()
        until = doorman.reject_until
        if now < until:
            if quiet:
                next(rejected)
                raise _new_error(
                    CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                )
            if direct is not None:
                next(rejected)
                if passes_error and "error" not in kwargs:
                    rejection = _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                    if kwargs:
                        answer = direct(*args, **kwargs, error=rejection)
                    else:
                        answer = direct(*args, error=rejection)
                else:
                    answer = direct(*args, **kwargs)
                if type(answer) is _COROUTINE or inspect.isawaitable(answer):
                    return await answer  # type: ignore[no-any-return]
                return answer  # type: ignore[no-any-return]
            return await resolve(reject(now, args, kwargs))  # type: ignore[no-any-return]
        return await general(fn, args, kwargs, now)

    adopt_metadata(guarded, fn)
    breaker._wrappers.add(guarded)
    return guarded
