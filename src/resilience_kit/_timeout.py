"""A time limit on each call of an async callable, measured on the clock in use.

On the real clock the limit is the event loop's: Python 3.11+ uses `asyncio.timeout`, which
turns only its own cancellation into `TimeoutError`; Python 3.10 has `_within`. Neither is
`asyncio.wait_for`: before Python 3.12 it returns the attempt's result when the caller is
cancelled in the loop iteration the attempt finishes, so the caller's cancellation is lost.

Under a [FakeClock][resilience_kit.testing.FakeClock] (the pytest plugin's `fake_clock`, or
`use_clock`), the deadline is also registered on the fake clock, and the `advance` (or fake
sleep) that reaches it expires the same machinery, from whichever thread advanced. The event
loop's timer stays armed too: an attempt that really waits past the limit (a stub that never
answers) ends there, as in production, instead of hanging the test. An attempt that ends
after its deadline without having been cancelled (its code advanced the clock and returned
without awaiting) ends with `TimeoutError` too: under a fake clock, an attempt that took
longer than the limit has timed out, whatever it returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar, cast

from typing_extensions import ParamSpec

from resilience_kit._callables import adopt_metadata, generator_kind, is_async_callable
from resilience_kit._validation import check_number
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import ConfigurationError

__all__ = ["timeout"]

P = ParamSpec("P")
R = TypeVar("R")


class _Cancellable(Protocol):
    def cancel(self) -> None: ...


# A clock that drives time itself (FakeClock): `_schedule(when, callback)` calls `callback`
# once the clock reaches `when` and returns the registration, or None once it follows real time.
_Schedule = Callable[[float, Callable[[], object]], "_Cancellable | None"]


def timeout(
    seconds: float, *, clock: Clock | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Limit each call of an async callable to `seconds`; a slower one raises `TimeoutError`.

    The call is cancelled at the limit and the built-in `TimeoutError` is raised (on Python
    3.10 too, where `asyncio.TimeoutError` is another class), naming the function and the
    limit. A `TimeoutError` the function raises itself passes through untouched, and cancelling
    the caller is never turned into a `TimeoutError`, not even when it coincides with the
    limit.

    The limit is measured on the clock in use: `clock`, or else the default clock at each
    call. Under a [FakeClock][resilience_kit.testing.FakeClock] (the pytest plugin's
    `fake_clock`, or [use_clock][resilience_kit.testing.use_clock]), time advanced past the
    limit during a call ends it with `TimeoutError`: a chaos `latency` longer than the limit
    times out at once, and so does a test's `fake_clock.advance()` while the call waits. Real
    time bounds the call too: one that really waits past the limit ends there all the same.

    It is the timeout of [resilient][resilience_kit.resilient] alone; inside `resilient` each
    attempt has its own.

    Args:
        seconds: The limit per call (> 0).
        clock: Where to measure it; if None, the default clock at the time of each call.

    Raises:
        ConfigurationError: At decoration: `seconds` out of range, or a plain `def`, a generator
            or an async generator function (a thread cannot be interrupted safely: use a
            breaker's `slow_call_threshold` to count slow calls as failures).

    Examples:
        ```python
        import resilience_kit


        @resilience_kit.timeout(2.5)
        async def fetch_quote(symbol: str) -> float: ...
        ```
    """
    limit = check_number("seconds", seconds, minimum=0, min_inclusive=False)
    if clock is not None and not callable(getattr(clock, "monotonic", None)):
        raise ConfigurationError(
            f"clock must have a monotonic() method, got {clock!r}", parameter="clock", value=clock
        )

    def decorator(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if isinstance(fn, (staticmethod, classmethod)):
            # Limit the function inside and wrap it again, so the descriptor binds as before.
            inner = decorator(fn.__func__)
            return cast("Callable[P, Coroutine[Any, Any, R]]", type(fn)(inner))
        name = getattr(fn, "__qualname__", fn)
        kind = generator_kind(fn)
        if kind is not None:
            raise ConfigurationError(
                f"timeout cannot limit the {kind} {name!r}: calling it only creates the "
                "generator; limit the calls it makes instead",
                parameter="fn",
                value=fn,
            )
        if not is_async_callable(fn):
            raise ConfigurationError(
                f"timeout works on async callables only, got the plain callable {name!r}: a "
                "thread cannot be interrupted safely; use a breaker's slow_call_threshold to "
                "count slow calls as failures",
                parameter="fn",
                value=fn,
            )
        return cast("Callable[P, Coroutine[Any, Any, R]]", _time_limited(fn, limit, clock))

    return decorator


def _time_limited(
    fn: Callable[..., Awaitable[Any]], limit: float, clock: Clock | None = None
) -> Callable[..., Awaitable[Any]]:
    """`fn` with each call limited to `limit` seconds on `clock` (the default clock if None)."""

    async def timed(*args: Any, **kwargs: Any) -> Any:
        in_use = default_clock() if clock is None else clock
        schedule: _Schedule | None = getattr(in_use, "_schedule", None)
        if schedule is not None:
            return await _on_driven_clock(
                fn, args, kwargs, limit=limit, clock=in_use, schedule=schedule
            )
        return await _on_loop_clock(fn, args, kwargs, limit)

    adopt_metadata(timed, fn)
    return timed


if sys.version_info >= (3, 11):

    async def _on_loop_clock(
        fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any, limit: float
    ) -> Any:
        # Converts only its own cancellation into TimeoutError, and only when no other
        # cancellation was requested meanwhile (Task.cancelling/uncancel).
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await fn(*args, **kwargs)
        except TimeoutError as error:
            if not deadline.expired():
                raise  # the function's own TimeoutError, untouched
            raise _timed_out(fn, limit) from error

    async def _until_expiry(
        fn: Callable[..., Awaitable[Any]],
        args: Any,
        kwargs: Any,
        limit: float,
        arm: Callable[[Callable[[], None]], _Cancellable | None],
    ) -> Any:
        """`asyncio.timeout` with no deadline of its own, expired when `arm`'s timer says."""
        loop = asyncio.get_running_loop()
        deadline = asyncio.timeout(None)
        active = True

        def expire() -> None:  # in the loop's thread
            # Two timers may end one attempt (a fake clock's and the loop's): only the first
            # does, since an expiring timeout cannot be rescheduled.
            if active and not deadline.expired():
                deadline.reschedule(loop.time())  # due now: cancels at the next await

        timer = None
        try:
            async with deadline:
                timer = arm(expire)
                return await fn(*args, **kwargs)
        except TimeoutError as error:
            if not deadline.expired():
                raise
            raise _timed_out(fn, limit) from error
        finally:
            active = False
            if timer is not None:
                timer.cancel()

else:

    async def _on_loop_clock(
        fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any, limit: float
    ) -> Any:
        loop = asyncio.get_running_loop()
        return await _within(
            fn(*args, **kwargs), limit, fn, lambda expire: loop.call_later(limit, expire)
        )

    async def _until_expiry(
        fn: Callable[..., Awaitable[Any]],
        args: Any,
        kwargs: Any,
        limit: float,
        arm: Callable[[Callable[[], None]], _Cancellable | None],
    ) -> Any:
        return await _within(fn(*args, **kwargs), limit, fn, arm)


async def _on_driven_clock(
    fn: Callable[..., Awaitable[Any]],
    args: Any,
    kwargs: Any,
    *,
    limit: float,
    clock: Clock,
    schedule: _Schedule,
) -> Any:
    """The limit on a clock that drives time itself (a FakeClock): it says when time is up."""
    loop = asyncio.get_running_loop()
    start = clock.monotonic()
    following = False

    def arm(expire: Callable[[], None]) -> _Cancellable | None:
        nonlocal following

        def notify() -> None:  # in whichever thread advanced the clock
            if _running_loop() is loop:
                # At once, so that the attempt is cancelled at its very next await (the fake
                # sleep that advanced the clock yields once for that).
                expire()
                return
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to end
                loop.call_soon_threadsafe(expire)

        # Real time still bounds the attempt: one that really waits (a stub that never
        # answers) ends at the limit as it would in production, instead of hanging the test.
        real = loop.call_later(limit, expire)
        registration = schedule(start + limit, notify)
        if registration is None:  # the clock follows real time now (after its test)
            following = True
            return real
        return _Timers(registration, real)

    try:
        result = await _until_expiry(fn, args, kwargs, limit, arm)
    except Exception as error:
        if following or isinstance(error, TimeoutError) or not _overran(clock, start, limit):
            raise
        raise _timed_out(fn, limit) from error
    if not following and _overran(clock, start, limit):
        # Time was advanced past the limit by code that never awaited after it.
        raise _timed_out(fn, limit)
    return result


class _Timers:
    """Two timers that end one attempt: whichever fires first expires it."""

    __slots__ = ("timers",)

    def __init__(self, *timers: _Cancellable) -> None:
        self.timers = timers

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _overran(clock: Clock, start: float, limit: float) -> bool:
    return clock.monotonic() - start >= limit


def _timed_out(fn: Callable[..., Any], limit: float) -> TimeoutError:
    """The error of an attempt cut off by the limit: it says which function and what limit."""
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return TimeoutError(f"{name} did not finish within its timeout of {limit:g}s")


async def _within(
    awaitable: Awaitable[Any],
    limit: float,
    fn: Callable[..., Any],
    arm: Callable[[Callable[[], None]], _Cancellable | None],
) -> Any:
    """Await `awaitable` in a task of its own, cancelled when `arm`'s timer expires.

    For Python 3.10, whose tasks merge two cancellations requested in one loop iteration into
    one, so a timer that cancelled the caller's own task could not tell whether the caller was
    cancelled too. Here the timer cancels only the attempt's task, and the caller waits on a
    future nobody else cancels: a `CancelledError` while waiting is always the caller's, and
    it wins over a result or a timeout of the same iteration. A timeout raises the built-in
    `TimeoutError` (`asyncio.TimeoutError` is another class on 3.10). `arm(expire)` starts
    the timer (`loop.call_later(limit, expire)` on the real clock) and returns it.
    """
    loop = asyncio.get_running_loop()
    attempt = asyncio.ensure_future(awaitable)
    settled = loop.create_future()
    expired = False

    def settle(_: object) -> None:
        if not settled.done():
            settled.set_result(None)

    def expire() -> None:
        nonlocal expired
        if not attempt.done():
            expired = True
            attempt.cancel()

    attempt.add_done_callback(settle)
    timer = arm(expire)
    try:
        await settled
    except asyncio.CancelledError:
        # The caller's cancellation: the attempt's clean-up runs before it goes on (as with
        # asyncio.wait_for), and whatever the attempt ended with is dropped.
        attempt.remove_done_callback(settle)
        attempt.add_done_callback(_retrieve)
        attempt.cancel()
        await asyncio.wait((attempt,))
        raise
    finally:
        if timer is not None:
            timer.cancel()
    try:
        return attempt.result()
    except asyncio.CancelledError as error:
        if expired:
            raise _timed_out(fn, limit) from error
        raise


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a dropped attempt's exception as seen, so asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()
