"""``@resilient``: a breaker, retries, a per-attempt timeout and a fallback in one decorator.

The layers are fixed, outermost first, because every other order is a bug:

1. ``fallback`` sees only the final outcome, after the retries have given up.
2. ``retry`` is outside the breaker, so an open breaker (``CircuitOpenError``, which no policy
   retries) stops the retries at once instead of being hammered by them, and each attempt is
   one call the breaker counts.
3. ``breaker`` guards each attempt. Its own ``fallback`` must not answer a failed attempt (the
   retries would never see the failure), so attempts go through the breaker's call form that
   raises, and the breaker's ``fallback`` moves to layer 1 when ``resilient`` has none.
4. ``timeout`` bounds each attempt, inside the breaker, so a timed-out attempt counts as a
   failure and can be retried.

The timeout is [resilience_kit.timeout][]'s (see ``_timeout``): it never loses the caller's
cancellation, and it measures on the clock in use, so under a test's ``FakeClock`` advancing
time past the limit ends the attempt.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from typing_extensions import ParamSpec

from resilience_kit._callables import adopt_metadata, generator_kind, is_async_callable
from resilience_kit._retry.decorator import _decorate
from resilience_kit._retry.policy import RetryPolicy
from resilience_kit._retry.presets import _resolve
from resilience_kit._timeout import _on_driven_clock, _on_loop_clock, _Schedule, _time_limited
from resilience_kit._validation import check_callable, check_number
from resilience_kit.breaker._breaker import CircuitBreaker, _accepts, _answer
from resilience_kit.breaker._fallback import check_fits
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import CircuitOpenError, ConfigurationError

__all__ = ["resilient"]

P = ParamSpec("P")
R = TypeVar("R")


def resilient(
    *,
    breaker: CircuitBreaker | None = None,
    retry: RetryPolicy | str | None = None,
    timeout: float | None = None,
    fallback: Callable[..., Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard a function with a breaker, retries, a per-attempt timeout and a fallback.

    Args:
        breaker: A [`CircuitBreaker`][resilience_kit.CircuitBreaker] guarding each attempt, or None.
            If it has a ``fallback`` of its own, that fallback does not answer single
            attempts here (the failure is retried first); it answers the final outcome
            instead, unless this decorator's ``fallback`` is given, which wins.
        retry: A [`RetryPolicy`][resilience_kit.RetryPolicy] or a preset name, or None for one
            attempt.
        timeout: Seconds each attempt of an ``async def`` may take (> 0); a slower attempt
            is cancelled and raises the built-in ``TimeoutError`` on every Python version
            (on 3.10 too, where ``asyncio.TimeoutError`` is another class), which the breaker
            records and the policy may retry. With a policy ``deadline``, an attempt gets at
            most what is left of it, so the call never runs past the deadline. Cancelling the
            caller is never turned into a ``TimeoutError``, not even when it coincides with
            the timeout. Measured on the clock in use at each call: under a test's
            ``FakeClock`` (the ``fake_clock`` fixture), time advanced past the limit during an
            attempt ends it. Not available for a plain ``def``: a thread cannot be interrupted
            safely (use the breaker's ``slow_call_threshold`` to count slow calls as
            failures).
        fallback: Called with the call's own arguments when the final outcome is an open
            breaker (``CircuitOpenError``) or an error the breaker records (by its
            ``failure_on`` and ``ignore``; any ``Exception`` without a breaker). It also gets
            that error as ``error=`` if it declares a parameter of that name. Other errors
            propagate untouched. May be a coroutine function for an ``async def``.

    Raises:
        ConfigurationError: At decoration: a generator or async generator function (calling
            it only creates the generator: no layer would see its errors), ``timeout`` on a
            plain ``def``, an out-of-range ``timeout``, an unknown preset, a ``breaker`` that
            is not a ``CircuitBreaker``, a non-callable ``fallback``, or a coroutine
            ``fallback`` for a plain ``def``.

    Examples:
        ```python
        from resilience_kit import resilient

        from resilience_kit import CircuitBreaker

        llm = CircuitBreaker("llm-doc")


        @resilient(
            breaker=llm,
            retry="external_api",
            timeout=20,
            fallback=lambda prompt, error: "The assistant is busy, try again.",
        )
        async def complete(prompt: str) -> str: ...


        llm.unregister()
        ```
    """
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigurationError(
            f"breaker must be a CircuitBreaker or None, got {breaker!r}",
            parameter="breaker",
            value=breaker,
        )
    if timeout is not None:
        timeout = check_number("timeout", timeout, minimum=0, min_inclusive=False)
    layers = _Layers(
        breaker=breaker,
        policy=None if retry is None else _resolve(retry, {}),
        timeout=timeout,
        fallback=check_callable("fallback", fallback),
    )
    return layers.decorate


class _Layers:
    """One ``resilient(...)`` configuration, applied to any number of functions."""

    def __init__(
        self,
        *,
        breaker: CircuitBreaker | None,
        policy: RetryPolicy | None,
        timeout: float | None,
        fallback: Callable[..., Any] | None,
    ) -> None:
        self.breaker = breaker
        self.policy = policy
        self.timeout = timeout
        if breaker is None:
            self.failure_on: tuple[type[BaseException], ...] = (Exception,)
            self.ignore: tuple[type[BaseException], ...] = ()
        else:
            self.failure_on, self.ignore = breaker.failure_on, breaker.ignore
            if fallback is None:
                fallback = breaker._fallback
        self.fallback = fallback
        self.passes_error = _accepts(fallback, "error")

    def answers(self, error: Exception) -> bool:
        """Whether ``fallback`` answers a final error (the breaker's rules)."""
        return isinstance(error, CircuitOpenError) or (
            isinstance(error, self.failure_on) and not isinstance(error, self.ignore)
        )

    def fall_back(self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The breaker's rule: ``error=`` unless the call passed an ``error`` of its own.
        fallback = cast("Callable[..., Any]", self.fallback)
        return _answer(fallback, self.passes_error, error, args, kwargs)

    def decorate(self, fn: Callable[P, R]) -> Callable[P, R]:
        kind = generator_kind(fn)
        if kind is not None:
            raise ConfigurationError(
                f"resilient cannot guard the {kind} {getattr(fn, '__qualname__', fn)!r}: "
                "calling it only creates the generator, so the breaker would count a success "
                "before any of its code ran, no error it raises while iterated would be "
                "retried or reach the fallback, and a timeout would not bound the iteration; "
                "guard the calls it makes instead",
                parameter="fn",
                value=fn,
            )
        if self.passes_error and _accepts(fn, "error"):
            raise ConfigurationError(
                f"fallback {self.fallback!r} takes `error`, and so does "
                f"{getattr(fn, '__qualname__', fn)!r}: the fallback gets the call's own "
                "arguments, so it could not tell the call's `error` from the exception; rename "
                "the parameter of one of them",
                parameter="fallback",
                value=self.fallback,
            )
        check_fits(self.fallback, fn, passes_error=self.passes_error, owner="resilient()")
        if is_async_callable(fn):
            return cast("Callable[P, R]", self._async(cast("Callable[..., Awaitable[Any]]", fn)))
        if self.timeout is not None:
            raise ConfigurationError(
                f"timeout works on async def only, got timeout={self.timeout!r} for the plain "
                f"def {getattr(fn, '__qualname__', fn)!r}: a thread cannot be interrupted "
                "safely; use the breaker's slow_call_threshold to count slow calls as failures",
                parameter="timeout",
                value=self.timeout,
            )
        if inspect.iscoroutinefunction(self.fallback):
            raise ConfigurationError(
                f"fallback must be a plain function for the plain def "
                f"{getattr(fn, '__qualname__', fn)!r}, got the coroutine function "
                f"{self.fallback!r}: its answer would be an un-awaited coroutine",
                parameter="fallback",
                value=self.fallback,
            )
        return cast("Callable[P, R]", self._sync(fn))

    def _guard_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` as one attempt through the breaker, raising instead of falling back."""
        breaker = self.breaker
        if breaker is None:
            return fn
        if breaker._fallback is None:
            return breaker(fn)  # the decorator's fast path
        call, monotonic = breaker._call, breaker._monotonic

        @functools.wraps(fn)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            return call(fn, args, kwargs, monotonic(), own_fallback=False)

        # CircuitBreaker._use_clock (the fake_clock fixture) rewrites its `monotonic` cell.
        breaker._wrappers.add(attempt)
        return attempt

    def _guard_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        breaker = self.breaker
        if breaker is None:
            return fn
        if breaker._fallback is None:
            return breaker(fn)
        call, monotonic = breaker._call_async, breaker._monotonic

        @functools.wraps(fn)
        async def attempt(*args: Any, **kwargs: Any) -> Any:
            return await call(fn, args, kwargs, monotonic(), own_fallback=False)

        # CircuitBreaker._use_clock (the fake_clock fixture) rewrites its `monotonic` cell.
        breaker._wrappers.add(attempt)
        return attempt

    def _sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        attempt = self._guard_sync(fn)
        if self.policy is not None:
            attempt = _decorate(attempt, self.policy, None, None)
        if self.fallback is None:
            return attempt
        final, answers, fall_back = attempt, self.answers, self.fall_back

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return final(*args, **kwargs)
            except Exception as error:
                if not answers(error):
                    raise
                caught = error
            # Outside the except block: an error the fallback raises is its own, not raised
            # "during handling" of the call's.
            return fall_back(caught, args, kwargs)

        return guarded

    def _async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        policy, timeout = self.policy, self.timeout
        if timeout is not None and policy is not None and policy.deadline is not None:
            # The retry's clock, resolved once here as `_decorate` would.
            clock = default_clock()
            call_ends: contextvars.ContextVar[float] = contextvars.ContextVar("call_ends")
            attempt = _time_limited_within(fn, timeout, call_ends, clock)
            attempt = _decorate(self._guard_async(attempt), policy, clock, None)
            attempt = _with_deadline(attempt, policy.deadline, call_ends, clock)
        else:
            attempt = fn if timeout is None else _time_limited(fn, timeout)
            attempt = self._guard_async(attempt)
            if policy is not None:
                attempt = _decorate(attempt, policy, None, None)
        if self.fallback is None:
            return attempt
        final, answers, fall_back = attempt, self.answers, self.fall_back

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await final(*args, **kwargs)
            except Exception as error:
                if not answers(error):
                    raise
                caught = error
            answer = fall_back(caught, args, kwargs)
            if inspect.isawaitable(answer):
                return await answer
            return answer

        return guarded


# With a retry deadline, each attempt's timeout is cut to what is left of the deadline: the
# per-attempt timeout alone lets the last attempt start just before the deadline and run its
# full timeout past it (INTERACTIVE with timeout=1.0 gave up on a hung dependency after 3.5 s,
# not 3 s). The outer wrapper records when the call's deadline ends; each attempt reads it.


def _time_limited_within(
    fn: Callable[..., Awaitable[Any]],
    limit: float,
    call_ends: contextvars.ContextVar[float],
    clock: Clock,
) -> Callable[..., Awaitable[Any]]:
    """`fn` limited to `limit` seconds, or less when the call's deadline ends sooner."""
    monotonic = clock.monotonic

    async def attempt(*args: Any, **kwargs: Any) -> Any:
        # `_time_limited`'s call with a limit that changes from call to call (inlined: an
        # extra coroutine per attempt would cost more than the rest of this wrapper).
        left = call_ends.get() - monotonic()
        cut = limit if left >= limit else max(left, 0.0)
        in_use = default_clock()
        schedule: _Schedule | None = getattr(in_use, "_schedule", None)
        if schedule is not None:
            return await _on_driven_clock(
                fn, args, kwargs, limit=cut, clock=in_use, schedule=schedule
            )
        return await _on_loop_clock(fn, args, kwargs, cut)

    adopt_metadata(attempt, fn)
    return attempt


def _with_deadline(
    retried: Callable[..., Awaitable[Any]],
    deadline: float,
    call_ends: contextvars.ContextVar[float],
    clock: Clock,
) -> Callable[..., Awaitable[Any]]:
    monotonic = clock.monotonic

    async def within_deadline(*args: Any, **kwargs: Any) -> Any:
        token = call_ends.set(monotonic() + deadline)
        try:
            return await retried(*args, **kwargs)
        finally:
            call_ends.reset(token)

    adopt_metadata(within_deadline, retried)
    return within_deadline
