"""The retry loop: after a first attempt failed, tenacity's steps decide each wait.

The core is shared by sync and async and knows nothing about asyncio: only the function and
the sleep are awaited in `_retry_async()`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import operator
import types
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import tenacity

from resilience_kit._redact import redact
from resilience_kit._retry.log import _LOGGER, _error_text, _hook_failed
from resilience_kit._retry.policy import RetryEvent, RetryPolicy, _never_retried
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
        "catch",
        "clock",
        "count_call",
        "counters",
        "idle",
        "judge_result",
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
        # What the wrappers catch: BaseException only when the policy names one (a library's
        # own BaseException timeout); `verdict` still lets cancellation and the like through.
        self.catch: type[BaseException] = (
            Exception
            if all(issubclass(cls, Exception) for cls in (*policy.retry_on, *policy.give_up_on))
            else BaseException
        )
        self.judge_result = None if policy.retry_if_result is None else self._judge_result
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
            if _never_retried(error):
                return _PROPAGATE
            if isinstance(error, policy.give_up_on):
                return _GIVE_UP
            return _RETRY if isinstance(error, policy.retry_on) else _PROPAGATE
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

    def _judge_result(self, result: Any) -> bool:
        """Whether ``retry_if_result`` retries ``result``; False if it raised (logged)."""
        policy = self.policy
        predicate = cast("Callable[[Any], bool]", policy.retry_if_result)
        try:
            return bool(predicate(result))
        except Exception as hook_error:
            _hook_failed(policy, "retry_if_result", hook_error, "returning the result")
            return False

    def takes_over(self, error: BaseException) -> int | None:
        """The verdict on a first attempt's error if the retry loop handles it, else None."""
        verdict = self.verdict(error)
        if verdict == _RETRY or (verdict == _GIVE_UP and self.returns_default):
            return verdict
        return None

    def hint(self, outcome: object) -> float:
        """The wait ``retry_after`` asks for after an error (or a retried result): 0 if none,
        or if it raised or answered junk."""
        policy = self.policy
        if policy.retry_after is None:
            return 0.0
        try:
            # Typed as an answer the hook promised; checked as anything it may return.
            answer: object = policy.retry_after(outcome, self.clock.wall())
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
    """A tenacity controller whose callbacks read what `_Run.plan()` decided.

    tenacity copies its controller for every call: the controller keeps a loop step's working
    state (the actions it queues, its statistics) in a ``threading.local``, which keeps threads
    apart but not two calls in one thread (two tasks, or a call made by a signal handler or a
    finalizer in the middle of a step). Building one per failed call costs 2 to 4 µs, the
    controller and its thread-local state being set up again; so each decorated function keeps
    idle ones instead (`_Retrier.controller()`), and no two calls ever hold the same one.
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

    An attempt fails by raising an error the policy retries, or by returning a result that
    ``retry_if_result`` retries. Each failed attempt goes through tenacity's loop step,
    `tenacity.Retrying.iter()`, which asks the retry, stop and wait callbacks and either
    ends the loop or returns the sleep. The loops below drive those steps themselves instead
    of iterating a ``Retrying``: a success ends the call at once, and the step tenacity takes
    before each attempt (it only runs the ``before`` hook, unused here) is skipped, about
    1.3 µs per attempt. `plan()` decides before each step, so the clock and
    ``retry_after`` are read once per attempt whatever order tenacity asks ``stop`` and
    ``wait`` in. One synchronous controller serves ``async def`` too: only the function, the
    sleep and an async ``on_retry`` are awaited, so the steps need none of
    ``AsyncRetrying``'s coroutine wrapping of every callback.
    """

    __slots__ = (
        "error",
        "last_wait",
        "result",
        "retrier",
        "sleep_for",
        "start",
        "stopping",
        "verdict",
    )

    def __init__(
        self,
        retrier: _Retrier,
        start: float,
        *,
        error: BaseException | None = None,
        verdict: int = _RETRY,
        result: Any = None,
    ) -> None:
        # Never the call's function or arguments: tenacity's state is all the callbacks see.
        super().__init__(retrier.controller(), fn=None, args=(), kwargs={})
        self.retrier = retrier
        self.start = start
        self.error = error  # the latest attempt's error, None if it returned `result`
        self.result = result
        self.verdict = verdict  # what the policy makes of the latest attempt
        self.stopping = False
        self.sleep_for = 0.0
        self.last_wait = False  # a wait was cut short by the deadline: no retry after it
        if verdict == _RETRY:
            # A loop step updates the controller's statistics: begin() sets them up, as every
            # tenacity call does.
            self.retry_object.begin()
            self._record()

    def _record(self) -> None:
        """Give tenacity the latest attempt's outcome (its loop step needs one)."""
        error = self.error
        if error is None:
            self.set_result(self.result)
        else:
            self.set_exception((type(error), error, error.__traceback__))

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
            outcome = self.result if self.error is None else self.error
            seconds = max(seconds, retrier.hint(outcome))
        seconds = min(seconds, policy.max_wait)
        if policy.deadline is not None:
            budget = self.remaining() - retrier.reserve
            if budget <= 0:
                return
            if seconds >= budget:
                seconds, self.last_wait = budget, True
        self.stopping, self.sleep_for = False, max(0.0, seconds)

    def next_wait(self) -> float | None:
        """After a failed attempt: the wait before the next one, or None to stop.

        The caller then runs `announce()` (the ``on_retry`` hook) and waits.
        """
        self.plan()
        step = self.retry_object.iter(self)
        if not isinstance(step, tenacity.DoSleep):
            return None
        wait = float(step)
        self.log_wait(wait)
        return wait

    def announce(self, wait: float) -> Awaitable[object] | None:
        """Call ``on_retry`` about the attempt that just failed; then count the next attempt.

        Returns what an async hook returned, for an async call to await (see `_settle()`);
        a hook that raises is logged and the call goes on.
        """
        policy = self.retrier.policy
        hook = policy.on_retry
        if hook is None:
            self.prepare_for_next_attempt()
            return None
        event = RetryEvent(
            policy=policy,
            attempt=self.attempt_number,
            wait=wait,
            error=self.error,
            result=self.result,
        )
        answer: object = None
        try:
            answer = hook(event)
        except Exception as hook_error:
            _hook_failed(policy, "on_retry", hook_error, "retrying all the same")
        self.prepare_for_next_attempt()
        return answer if inspect.isawaitable(answer) else None

    def attempt_starts(self) -> None:
        next(self.retrier.counters.retries)

    def log_wait(self, wait: float) -> None:
        policy = self.retrier.policy
        if not _LOGGER.isEnabledFor(policy.log_level):
            return
        error = self.error
        # A broken log handler must not break the call. (Not contextlib.suppress: a try costs
        # nothing, the context manager a quarter of a microsecond per attempt.)
        try:
            if error is None:
                # Only the result's type: a result may hold anything, secrets included.
                result_type = type(self.result).__name__
                _LOGGER.log(
                    policy.log_level,
                    "retry policy %r: attempt %d of %d returned a %s that retry_if_result "
                    "retries; retrying in %.3fs",
                    policy.name,
                    self.attempt_number,
                    policy.attempts,
                    result_type,
                    wait,
                    extra={
                        "retry_policy": policy.name,
                        "retry_attempt": self.attempt_number,
                        "retry_wait": wait,
                        "result_type": result_type,
                    },
                )
                return
            error_type = type(error).__name__
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

    def failed(self, error: BaseException) -> bool:
        """Judge a later attempt's error: True if retryable (then recorded for tenacity)."""
        self.error, self.result = error, None
        self.verdict = verdict = self.retrier.verdict(error)
        if verdict != _RETRY:
            return False
        self._record()
        return True

    def returned(self, result: Any) -> bool:
        """Judge a later attempt's result: True if ``retry_if_result`` retries it."""
        judge = self.retrier.judge_result
        if judge is None or not judge(result):
            return False
        self.error, self.result, self.verdict = None, result, _RETRY
        self._record()
        return True

    def succeeded(self, result: Any) -> Any:
        next(self.retrier.counters.successes)
        return result

    def conclude(self) -> tuple[BaseException | None, Any]:
        """``(error to raise, None)`` or ``(None, the value to return)`` once retrying ended.

        The latest error is either not retried (its verdict says why) or the last one of a
        run with no attempt or time left; a retried result is returned when none is left.
        """
        retrier = self.retrier
        error = self.error
        if error is None:
            next(retrier.counters.exhausted)
            return None, self.result
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


def _dropped(run: _Run, answer: Awaitable[object]) -> None:
    """An ``on_retry`` of a plain def returned an awaitable: nobody can await it."""
    close = getattr(answer, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()  # a coroutine never awaited would warn at garbage collection
    with contextlib.suppress(Exception):
        _LOGGER.error(
            "on_retry of policy %r returned an awaitable for a plain (sync) function; it was "
            "not awaited",
            run.retrier.policy.name,
            extra={"retry_policy": run.retrier.policy.name},
        )


async def _settle(run: _Run, answer: Awaitable[object]) -> None:
    """Await what an async ``on_retry`` returned; its error is logged, never the call's."""
    try:
        await answer
    except Exception as hook_error:
        _hook_failed(run.retrier.policy, "on_retry", hook_error, "retrying all the same")


# The two loops differ only in ``await``. The error a call ends with is raised here, from the
# loop, with its traceback cut to the function's frames (see _attempt_traceback).


def _retry_sync(
    run: _Run,
    pause: Callable[[float], None],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    catch = run.retrier.catch
    try:
        if run.verdict == _RETRY:
            while (wait := run.next_wait()) is not None:
                if (answer := run.announce(wait)) is not None:
                    _dropped(run, answer)
                pause(wait)
                run.attempt_starts()
                try:
                    result = fn(*args, **kwargs)
                except catch as error:
                    if not run.failed(error):
                        break
                else:
                    if not run.returned(result):
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
    catch = run.retrier.catch
    try:
        if run.verdict == _RETRY:
            while (wait := run.next_wait()) is not None:
                if (answer := run.announce(wait)) is not None:
                    await _settle(run, answer)
                await pause(wait)
                run.attempt_starts()
                try:
                    result = await fn(*args, **kwargs)
                except catch as error:
                    if not run.failed(error):
                        break
                else:
                    if not run.returned(result):
                        return run.succeeded(result)
    finally:
        run.retrier.give_back(run.retry_object)
    raised, value = run.conclude()
    if raised is None:
        return value
    raise raised.with_traceback(_attempt_traceback(raised))
