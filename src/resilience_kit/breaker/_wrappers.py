"""The decorator's wrappers: a breaker's hot path, bound into closures.

A decorated call reads ``gate.clean`` (one attribute of the state cell): the period the call
is admitted in, when a success in it needs no judging and the breaker neither times calls nor
inspects results. With the consecutive policy a success then costs one lock-free counter step
and a second read of ``gate.clean``: a failure recorded while the call ran makes the success
matter (it ends the run of failures), and the second read sends it to the general path. With
the rate policy it costs a clock read and the same step, while the period's ``until`` allows
it (see ``Period``). Every other case takes the breaker's general path
(``_call``/``_call_async``), which locks only to change the machine's state.

A breaker whose state lives in a store shared with other processes takes the same fast path
when its cell allows it (``BreakerCell.fast_path``): a failure on it is pushed to the store
before the call returns, awaited from an async wrapper (``_sent_when_failed``).
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

# How a wrapper answers a rejected call: raise CircuitOpenError itself; call the fallback
# itself, without or with error=; or leave it to the breaker (listeners hear rejections).
_RAISE, _FALLBACK, _WITH_ERROR, _GENERAL = 0, 1, 2, 3


def _hot_parts(breaker: CircuitBreaker) -> tuple[Any, ...]:
    """What the decorators' hot paths touch, to be bound to locals of their closures.

    Closure cells are the cheapest lookups a wrapper can make, but each one is copied into
    every call's frame, so a rejection's options are two of them: ``mode`` (one of the
    ``_RAISE``... constants) and ``answer`` (the fallback, or the breaker's general
    rejection). ``_use_clock`` finds the clock's cell by its name, ``monotonic``.
    """
    fallback = breaker._fallback
    if breaker._on_rejected:
        mode, answer = _GENERAL, breaker._reject
    elif fallback is None:
        mode, answer = _RAISE, None
    else:
        mode, answer = (_WITH_ERROR if breaker._accepts_error else _FALLBACK), fallback
    return (
        breaker._gate,
        _PASS if breaker._cell.remote and not breaker._cell.fast_path else breaker._machine,
        breaker._monotonic,
        breaker._cell.successes,
        breaker._failed,
        breaker._use_fallback,
        breaker._cell.rejected,
        mode,
        answer,
        breaker.name,
        breaker._late_success,
    )


def wrap_sync(breaker: CircuitBreaker, fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` guarded by ``breaker``: the decorator's sync wrapper.

    One body per failure policy, so that neither pays for the other's success check.
    """
    (
        gate,
        doorman,
        monotonic,
        successes,
        failed,
        use_fallback,
        rejected,
        mode,
        answer,
        name,
        late,
    ) = _hot_parts(breaker)
    general = breaker._call

    if breaker._window is None:

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            period = gate.clean  # the period this call is admitted in, or None: general path
            if period:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    if failed(error, period, 0.0):
                        return use_fallback(error, args, kwargs)  # type: ignore[no-any-return]
                    raise
                if type(result) is not _COROUTINE:
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
                # Raised here, not in a helper: each frame an exception unwinds through costs
                # about as much as the rest of the rejection. retry_after is
                # Machine.retry_after, inlined for the same reason.
                if not mode:
                    next(rejected)
                    raise _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                if mode == _GENERAL:
                    return answer(now, args, kwargs)  # type: ignore[no-any-return]
                # The fallback, called here too: a fallback that does not take the error
                # answers without one being made.
                next(rejected)
                if mode == _WITH_ERROR and "error" not in kwargs:
                    rejection = _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                    if kwargs:
                        return answer(*args, **kwargs, error=rejection)  # type: ignore[no-any-return]
                    return answer(*args, error=rejection)  # type: ignore[no-any-return]
                return answer(*args, **kwargs)  # type: ignore[no-any-return]
            return general(fn, args, kwargs, now)

    else:

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            period = gate.clean
            if period:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    if failed(error, period, 0.0):
                        return use_fallback(error, args, kwargs)  # type: ignore[no-any-return]
                    raise
                # Counted without a lock while its period goes on, no success can trip the
                # window, and its newest bucket has not ended (Period.until).
                if type(result) is not _COROUTINE and monotonic() < period.until:
                    next(successes)
                    return result
                return late(fn, result, period)  # type: ignore[no-any-return]
            now = monotonic()
            until = doorman.reject_until
            if now < until:
                if not mode:
                    next(rejected)
                    raise _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                if mode == _GENERAL:
                    return answer(now, args, kwargs)  # type: ignore[no-any-return]
                # The fallback, called here too: a fallback that does not take the error
                # answers without one being made.
                next(rejected)
                if mode == _WITH_ERROR and "error" not in kwargs:
                    rejection = _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                    if kwargs:
                        return answer(*args, **kwargs, error=rejection)  # type: ignore[no-any-return]
                    return answer(*args, error=rejection)  # type: ignore[no-any-return]
                return answer(*args, **kwargs)  # type: ignore[no-any-return]
            return general(fn, args, kwargs, now)

    adopt_metadata(guarded, fn)
    breaker._wrappers.add(guarded)
    return guarded


def _sent_when_failed(breaker: CircuitBreaker) -> Callable[..., Any]:
    """The fast path's failure handler for a breaker whose state lives in a store: the
    failure is in the store when the call returns, so an async store is awaited.

    It returns a coroutine for the wrapper to await (the wrapper tells it from the in-memory
    handler's bool by its type), so an in-memory async failure pays no extra await.
    """
    failed, cell = breaker._failed, breaker._cell

    async def failed_and_sent(error: BaseException, ticket: Any, started: float) -> bool:
        use = failed(error, ticket, started)
        await cell.push_async(breaker._monotonic())
        return use

    return failed_and_sent


def wrap_async(  # noqa: PLR0915 - one body per policy: hot paths, measured
    breaker: CircuitBreaker, fn: Callable[P, Awaitable[R]]
) -> Callable[P, Awaitable[R]]:
    """``fn`` guarded by ``breaker``: the decorator's async wrapper (as the sync one)."""
    (
        gate,
        doorman,
        monotonic,
        successes,
        failed,
        use_fallback,
        rejected,
        mode,
        answer,
        name,
        late,
    ) = _hot_parts(breaker)
    general = breaker._call_async
    if breaker._cell.remote and breaker._cell.fast_path:
        failed = _sent_when_failed(breaker)

    if breaker._window is None:

        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            period = gate.clean
            if period:
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    use = failed(error, period, 0.0)
                    if use.__class__ is _COROUTINE:  # a shared store: the failure goes out first
                        use = await use
                    if use:
                        return await resolve(use_fallback(error, args, kwargs))  # type: ignore[no-any-return]
                    raise
                next(successes)
                if gate.clean:
                    return result
                return late(None, result, period)  # type: ignore[no-any-return]
            now = monotonic()
            until = doorman.reject_until
            if now < until:
                if not mode:
                    next(rejected)
                    raise _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                if mode == _GENERAL:
                    return await resolve(answer(now, args, kwargs))  # type: ignore[no-any-return]
                next(rejected)
                if mode == _WITH_ERROR and "error" not in kwargs:
                    rejection = _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                    if kwargs:
                        reply = answer(*args, **kwargs, error=rejection)
                    else:
                        reply = answer(*args, error=rejection)
                else:
                    reply = answer(*args, **kwargs)
                if type(reply) is _COROUTINE or inspect.isawaitable(reply):
                    return await reply  # type: ignore[no-any-return]
                return reply  # type: ignore[no-any-return]
            return await general(fn, args, kwargs, now)

    else:

        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            period = gate.clean
            if period:
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    use = failed(error, period, 0.0)
                    if use.__class__ is _COROUTINE:  # a shared store: the failure goes out first
                        use = await use
                    if use:
                        return await resolve(use_fallback(error, args, kwargs))  # type: ignore[no-any-return]
                    raise
                if monotonic() < period.until:
                    next(successes)
                    return result
                return late(None, result, period)  # type: ignore[no-any-return]
            now = monotonic()
            until = doorman.reject_until
            if now < until:
                if not mode:
                    next(rejected)
                    raise _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                if mode == _GENERAL:
                    return await resolve(answer(now, args, kwargs))  # type: ignore[no-any-return]
                next(rejected)
                if mode == _WITH_ERROR and "error" not in kwargs:
                    rejection = _new_error(
                        CircuitOpenError, name, until - now if until < _INF else 0.0, doorman.state
                    )
                    if kwargs:
                        reply = answer(*args, **kwargs, error=rejection)
                    else:
                        reply = answer(*args, error=rejection)
                else:
                    reply = answer(*args, **kwargs)
                if type(reply) is _COROUTINE or inspect.isawaitable(reply):
                    return await reply  # type: ignore[no-any-return]
                return reply  # type: ignore[no-any-return]
            return await general(fn, args, kwargs, now)

    adopt_metadata(guarded, fn)
    breaker._wrappers.add(guarded)
    return guarded
