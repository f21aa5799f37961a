"""The retry loop: after a first attempt failed, tenacity's steps decide each wait.

The core is shared by sync and async and knows nothing about asyncio: only the function and
the sleep are awaited in :func:`_retry_async`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
import types
from collections.abc import Awaitable, Callable
from typing import Any, Final

import tenacity

from resilience_kit._redact import redact
from resilience_kit._retry.log import _LOGGER, _error_text, _hook_failed
from resilience_kit._retry.policy import RetryPolicy
from resilience_kit._retry.stats import _counters_for
from resilience_kit.clock import Clock

_RETRY, _GIVE_UP, _PROPAGATE = 0, 1, 2
# Share of the deadline the final attempt is guaranteed: a wait never eats into it, and the
# retries stop once less than this remains (an attempt with no time left is pointless).
_DEADLINE_RESERVE: Final = 0.01
# Idle tenacity controllers a decorated function keeps: as many as the failed calls that
# usually overlap, without holding on to many after a burst.
_IDLE_CONTROLLERS: Final = 16


class _Retrier:
    """What one decorated function knows about retrying, fixed at decoration."""

    __slots__ = (
        "base_wait",
        "clock",
        "count_call",
        "counters",
        "idle",
        "policy",
        "reserve",
        "returns_default",
    )

    def __init__(self, policy: RetryPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self.counters = _counters_for(policy.name)
        self.count_call = self.counters.calls.__next__
        self.returns_default = policy.on_exhausted == "return_default"
        self.reserve = 0.0 if policy.deadline is None else policy.deadline * _DEADLINE_RESERVE
        base: tenacity.wait.wait_base
        if policy.wait == "fixed":
            base = tenacity.wait_fixed(policy.min_wait)
        elif policy.wait == "exponential":
            base = tenacity.wait_exponential(
                multiplier=policy.multiplier, min=policy.min_wait, max=policy.max_wait
            )
        else:
            base = tenacity.wait_random_exponential(
                multiplier=policy.multiplier, min=policy.min_wait, max=policy.max_wait
            )
        if policy.jitter:
            base = base + tenacity.wait_random(0, policy.jitter)
        self.base_wait = base
        self.idle: list[tenacity.BaseRetrying] = []

    def controller(self) -> tenacity.BaseRetrying:
        """A controller for one call's retries, held by no other call until given back."""
        try:
            return self.idle.pop()  # atomic: two threads never pop the same one
        except IndexError:
            return _controller()

    def give_back(self, controller: tenacity.BaseRetrying) -> None:
        if len(self.idle) < _IDLE_CONTROLLERS:
            self.idle.append(controller)

    def verdict(self, error: BaseException) -> int:
        """What to do with an attempt's error; runs ``retry_if`` at most once per error."""
        policy = self.policy
        if not isinstance(error, Exception):
            return _PROPAGATE
        if isinstance(error, policy.give_up_on):
            return _GIVE_UP
        if isinstance(error, policy.retry_on):
            return _RETRY
        if policy.retry_if is not None:
            try:
                if policy.retry_if(error):
                    return _RETRY
            except Exception as hook_error:
                _hook_failed(policy, "retry_if", hook_error, "not retrying")
        return _PROPAGATE

    def takes_over(self, error: BaseException) -> int | None:
        """The verdict on a first attempt's error if the retry loop handles it, else None."""
        verdict = self.verdict(error)
        if verdict == _RETRY or (verdict == _GIVE_UP and self.returns_default):
            return verdict
        return None

    def hint(self, error: BaseException) -> float:
        """The wait ``retry_after`` asks for (0 if none), or 0 if it raised or answered junk."""
        policy = self.policy
        if policy.retry_after is None:
            return 0.0
        try:
            # Typed as an answer the hook promised; checked as anything it may return.
            answer: object = policy.retry_after(error, self.clock.wall())
        except Exception as hook_error:
            _hook_failed(policy, "retry_after", hook_error, "using the backoff wait")
            return 0.0
        if answer is None:
            return 0.0
        with contextlib.suppress(Exception):  # a Real whose float() raises is junk too
            if not isinstance(answer, bool) and isinstance(answer, numbers.Real):
                seconds = float(answer)
                if math.isfinite(seconds) and seconds >= 0:
                    return seconds
        with contextlib.suppress(Exception):
            _LOGGER.error(
                "retry_after of policy %r returned %s of type %s, not a finite number of "
                "seconds >= 0; using the backoff wait",
                policy.name,
                redact(repr(answer), max_length=60),
                type(answer).__name__,
                extra={"retry_policy": policy.name},
            )
        return 0.0


def _attempt_traceback(error: BaseException) -> types.TracebackType | None:
    """The traceback of an attempt's error from the called function down.

    The error was caught in the wrapper (first attempt) or in the retry loop (later ones), so
    its traceback starts with that frame; re-raising it from the loop adds the loop's frame
    again. Re-raising with this traceback gives ``wrapper -> loop -> the function``, never
    tenacity's or ``concurrent.futures``' frames.
    """
    traceback_ = error.__traceback__
    return None if traceback_ is None else traceback_.tb_next


def _exhausted(state: tenacity.RetryCallState) -> None:
    """tenacity's retry_error_callback: end the loop quietly; _Run.conclude raises or returns."""


_STOP: Final = operator.attrgetter("stopping")
_WAIT: Final = operator.attrgetter("sleep_for")


def _controller() -> tenacity.Retrying:
    """A tenacity controller whose callbacks read what :meth:`_Run.plan` decided.

    tenacity copies its controller for every call: the controller keeps a loop step's working
    state (the actions it queues, its statistics) in a ``threading.local``, which keeps threads
    apart but not two calls in one thread (two tasks, or a call made by a signal handler or a
    finalizer in the middle of a step). Building one per failed call costs 2 to 4 µs, the
    controller and its thread-local state being set up again; so each decorated function keeps
    idle ones instead (:meth:`_Retrier.controller`), and no two calls ever hold the same one.
    """
    return tenacity.Retrying(
        stop=_STOP,
        wait=_WAIT,
        # Only errors judged retryable are ever recorded in tenacity's state.
        retry=tenacity.retry_always,
        retry_error_callback=_exhausted,
    )


class _Run(tenacity.RetryCallState):
    """One call's retries after its first attempt failed: tenacity's state for it, and ours.

    Each failed attempt goes through tenacity's loop step, :meth:`tenacity.Retrying.iter`,
    which asks the retry, stop and wait callbacks and either ends the loop or returns the
    sleep. The loops below drive those steps themselves instead of iterating a ``Retrying``:
    a success ends the call at once, and the step tenacity takes before each attempt (it only
    runs the ``before`` hook, unused here) is skipped, about 1.3 µs per attempt. :meth:`plan`
    decides before each step, so the clock and ``retry_after`` are read once per attempt
    whatever order tenacity asks ``stop`` and ``wait`` in. One synchronous controller serves
    ``async def`` too: only the function and the sleep are awaited, so the steps need none of
    ``AsyncRetrying``'s coroutine wrapping of every callback.
    """

    __slots__ = (
        "error",
        "last_wait",
        "retrier",
        "sleep_for",
        "start",
        "stopping",
        "verdict",
    )

    def __init__(
        self, retrier: _Retrier, first: Exception, first_verdict: int, start: float
    ) -> None:
        # Never the call's function or arguments: tenacity's state is all the callbacks see.
        super().__init__(retrier.controller(), fn=None, args=(), kwargs={})
        self.retrier = retrier
        self.start = start
        self.error = first  # the latest attempt's error
        self.verdict = first_verdict  # and what the policy makes of it
        self.stopping = False
        self.sleep_for = 0.0
        self.last_wait = False  # a wait was cut short by the deadline: no retry after it
        if first_verdict == _RETRY:
            # A loop step updates the controller's statistics: begin() sets them up, as every
            # tenacity call does.
            self.retry_object.begin()
            self.set_exception((type(first), first, first.__traceback__))

    def remaining(self) -> float:
        deadline = self.retrier.policy.deadline
        if deadline is None:
            return float("inf")
        return deadline - (self.retrier.clock.monotonic() - self.start)

    def plan(self) -> None:
        """Decide whether to stop after the attempt that just failed, and how long to wait."""
        self.stopping, self.sleep_for = True, 0.0
        retrier = self.retrier
        policy = retrier.policy
        if self.attempt_number >= policy.attempts or self.last_wait:
            return
        seconds = float(retrier.base_wait(self))
        if policy.retry_after is not None:
            seconds = max(seconds, retrier.hint(self.error))
        seconds = min(seconds, policy.max_wait)
        if policy.deadline is not None:
            budget = self.remaining() - retrier.reserve
            if budget <= 0:
                return
            if seconds >= budget:
                seconds, self.last_wait = budget, True
        self.stopping, self.sleep_for = False, max(0.0, seconds)

    def next_wait(self) -> float | None:
        """After a retryable failure: the wait before the next attempt, or None to stop."""
        self.plan()
        step = self.retry_object.iter(self)
        if not isinstance(step, tenacity.DoSleep):
            return None
        wait = float(step)
        self.log_wait(wait)
        self.prepare_for_next_attempt()
        return wait

    def attempt_starts(self) -> None:
        next(self.retrier.counters.retries)

    def log_wait(self, wait: float) -> None:
        policy = self.retrier.policy
        if not _LOGGER.isEnabledFor(policy.log_level):
            return
        error = self.error
        error_type = type(error).__name__
        # A broken log handler must not break the call. (Not contextlib.suppress: a try costs
        # nothing, the context manager a quarter of a microsecond per attempt.)
        try:  # noqa: SIM105
            _LOGGER.log(
                policy.log_level,
                "retry policy %r: attempt %d of %d failed with %s: %s; retrying in %.3fs",
                policy.name,
                self.attempt_number,
                policy.attempts,
                error_type,
                _error_text(error),
                wait,
                extra={
                    "retry_policy": policy.name,
                    "retry_attempt": self.attempt_number,
                    "retry_wait": wait,
                    "error_type": error_type,
                },
            )
        except Exception:  # noqa: S110
            pass

    def failed(self, error: Exception) -> bool:
        """Judge a later attempt's error: True if retryable (then recorded for tenacity)."""
        self.error = error
        self.verdict = verdict = self.retrier.verdict(error)
        if verdict != _RETRY:
            return False
        self.set_exception((type(error), error, error.__traceback__))
        return True

    def succeeded(self, result: Any) -> Any:
        next(self.retrier.counters.successes)
        return result

    def conclude(self) -> tuple[BaseException | None, Any]:
        """``(error to raise, None)`` or ``(None, the value to return)`` once retrying ended.

        The latest error is either not retried (its verdict says why) or the last one of a
        run with no attempt or time left.
        """
        retrier = self.retrier
        error = self.error
        if self.verdict == _GIVE_UP:
            if retrier.returns_default:
                self._log_default(error, "gave up at once")
                return None, retrier.policy.default
            return error, None
        if self.verdict == _PROPAGATE:
            return error, None
        next(retrier.counters.exhausted)
        if not retrier.returns_default:
            return error, None
        self._log_default(error, f"exhausted after {self.attempt_number} attempts")
        return None, retrier.policy.default

    def _log_default(self, error: BaseException, why: str) -> None:
        policy = self.retrier.policy
        with contextlib.suppress(Exception):  # a broken log handler must not break the call
            _LOGGER.log(
                policy.log_level,
                "retry policy %r %s on %s: %s; returning the default",
                policy.name,
                why,
                type(error).__name__,
                _error_text(error),
                extra={"retry_policy": policy.name, "error_type": type(error).__name__},
            )


# The two loops differ only in ``await``. The error a call ends with is raised here, from the
# loop, with its traceback cut to the function's frames (see _attempt_traceback).


def _retry_sync(
    run: _Run,
    pause: Callable[[float], None],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    try:
        if run.verdict == _RETRY:
            while (wait := run.next_wait()) is not None:
                pause(wait)
                run.attempt_starts()
                try:
                    result = fn(*args, **kwargs)
                except Exception as error:
                    if not run.failed(error):
                        break
                else:
                    return run.succeeded(result)
    finally:
        run.retrier.give_back(run.retry_object)
    raised, value = run.conclude()
    if raised is None:
        return value
    raise raised.with_traceback(_attempt_traceback(raised))


async def _retry_async(
    run: _Run,
    pause: Callable[[float], Awaitable[None]],
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    try:
        if run.verdict == _RETRY:
            while (wait := run.next_wait()) is not None:
                await pause(wait)
                run.attempt_starts()
                try:
                    result = await fn(*args, **kwargs)
                except Exception as error:
                    if not run.failed(error):
                        break
                else:
                    return run.succeeded(result)
    finally:
        run.retrier.give_back(run.retry_object)
    raised, value = run.conclude()
    if raised is None:
        return value
    raise raised.with_traceback(_attempt_traceback(raised))
