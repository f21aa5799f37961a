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

import math
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import ParamSpec

from resilience_kit._callables import adopt_metadata
from resilience_kit.breaker._fallback import resolve
from resilience_kit.breaker._machine import NORMAL, CircuitState
from resilience_kit.errors import CircuitOpenError

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = ["wrap_async", "wrap_sync"]

P = ParamSpec("P")
R = TypeVar("R")

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
    return (
        breaker._gate,
        _PASS if breaker._cell.remote else breaker._machine,
        breaker._monotonic,
        breaker._cell.successes,
        breaker._failed,
        breaker._use_fallback,
        breaker._reject,
        breaker._cell.rejected,
        breaker._fallback is None and not breaker._on_rejected,
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
        failed,
        use_fallback,
        reject,
        rejected,
        quiet,
        name,
        late,
    ) = _hot_parts(breaker)
    new_error, open_error = _new_error, CircuitOpenError
    general = breaker._call
    coroutine = _COROUTINE

    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        if gate.clean:
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                if failed(error, NORMAL, 0.0):
                    return use_fallback(error, args, kwargs)  # type: ignore[no-any-return]
                raise
            if type(result) is not coroutine:
                next(successes)
                # Still clean: no failure was recorded while fn ran, so this success
                # has nothing to reset. Otherwise it must end the run of failures.
                if gate.clean:
                    return result
            return late(fn, result)  # type: ignore[no-any-return]
        now = monotonic()
        until = doorman.reject_until
        if now < until:
            if quiet:
                # Raised here, not in a helper: each frame an exception unwinds through
                # costs about as much as the rest of the rejection. retry_after is
                # Machine.retry_after, inlined for the same reason.
                next(rejected)
                raise new_error(
                    open_error,
                    name,
                    until - now if until < _INF else 0.0,
                    doorman.state,
                )
            return reject(now, args, kwargs)  # type: ignore[no-any-return]
        return general(fn, args, kwargs, now)

    adopt_metadata(guarded, fn)
    breaker._wrappers.add(guarded)
    return guarded


def wrap_async(breaker: CircuitBreaker, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``fn`` guarded by ``breaker``: the decorator's async wrapper."""
    (
        gate,
        doorman,
        monotonic,
        successes,
        failed,
        use_fallback,
        reject,
        rejected,
        quiet,
        name,
        late,
    ) = _hot_parts(breaker)
    new_error, open_error = _new_error, CircuitOpenError
    general = breaker._call_async

    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        if gate.clean:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                if failed(error, NORMAL, 0.0):
                    return await resolve(use_fallback(error, args, kwargs))  # type: ignore[no-any-return]
                raise
            next(successes)
            if gate.clean:  # as in the sync wrapper
                return result
            return late(None, result)  # type: ignore[no-any-return]
        now = monotonic()
        until = doorman.reject_until
        if now < until:
            if quiet:
                next(rejected)
                raise new_error(
                    open_error,
                    name,
                    until - now if until < _INF else 0.0,
                    doorman.state,
                )
            return await resolve(reject(now, args, kwargs))  # type: ignore[no-any-return]
        return await general(fn, args, kwargs, now)

    adopt_metadata(guarded, fn)
    breaker._wrappers.add(guarded)
    return guarded
