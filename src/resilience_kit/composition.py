"""``@resilient``: a breaker, retries, a per-attempt timeout and a fallback in one decorator.

The layers are fixed, outermost first, because every other order is a bug:

1. ``fallback`` sees only the final outcome, after the retries have given up.
2. ``retry`` is outside the breaker, so an open breaker (``CircuitOpenError``, which no policy
   retries) stops the retries at once instead of being hammered by them, and each attempt is
   one call the breaker counts.
3. ``breaker`` guards each attempt.
4. ``timeout`` bounds each attempt, inside the breaker, so a timed-out attempt counts as a
   failure and can be retried.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from typing_extensions import ParamSpec

from resilience_kit._retry import RetryPolicy, _decorate, _resolve
from resilience_kit._validation import check_callable, check_number
from resilience_kit.errors import CircuitOpenError, ConfigurationError

__all__ = ["Guard", "resilient"]

P = ParamSpec("P")
R = TypeVar("R")


class Guard(Protocol):
    """What ``resilient`` needs of a breaker; :class:`~resilience_kit.CircuitBreaker` is one.

    ``failure_on`` and ``ignore`` (optional attributes) tell which errors the breaker records;
    ``fallback`` answers only those, as the breaker's own ``fallback`` would.
    """

    def call(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """Run ``fn`` through the breaker."""
        ...

    async def call_async(self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        """Await ``fn`` through the breaker."""
        ...


def _accepts_error(fallback: Callable[..., Any]) -> bool:
    try:
        parameter = inspect.signature(fallback).parameters.get("error")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _breaker_rules(
    breaker: Guard | None,
) -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    if breaker is None:
        return (Exception,), ()
    failure_on = getattr(breaker, "failure_on", None)
    ignore = getattr(breaker, "ignore", None)
    return tuple(failure_on or (Exception,)), tuple(ignore or ())


def resilient(
    *,
    breaker: Guard | None = None,
    retry: RetryPolicy | str | None = None,
    timeout: float | None = None,
    fallback: Callable[..., Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard a function with a breaker, retries, a per-attempt timeout and a fallback.

    Args:
        breaker: A :class:`~resilience_kit.CircuitBreaker` guarding each attempt, or None.
            Give it no ``fallback`` of its own: it would answer failed attempts itself, and
            nothing would be retried. Use this decorator's ``fallback`` instead.
        retry: A :class:`~resilience_kit.RetryPolicy` or a preset name, or None for one attempt.
        timeout: Seconds each attempt of an ``async def`` may take (> 0); a slower attempt
            raises ``TimeoutError``, which the breaker records and the policy may retry. Not
            available for a plain ``def``: a thread cannot be interrupted safely (use the
            breaker's ``slow_call_threshold`` to count slow calls as failures).
        fallback: Called with the call's own arguments when the final outcome is an open
            breaker (``CircuitOpenError``) or an error the breaker records (by its
            ``failure_on`` and ``ignore``; any ``Exception`` without a breaker). It also gets
            that error as ``error=`` if it declares a parameter of that name. Other errors
            propagate untouched. May be a coroutine function for an ``async def``.

    Raises:
        ConfigurationError: At decoration: ``timeout`` on a plain ``def``, or an out-of-range
            ``timeout``, an unknown preset, a non-callable ``fallback``.

    Example:
        >>> from resilience_kit import CircuitBreaker
        >>> @resilient(breaker=CircuitBreaker("llm"), retry="external_api", timeout=20,
        ...            fallback=lambda prompt, error: "The assistant is busy, try again.")
        ... async def complete(prompt: str) -> str: ...
    """
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
        breaker: Guard | None,
        policy: RetryPolicy | None,
        timeout: float | None,
        fallback: Callable[..., Any] | None,
    ) -> None:
        self.breaker = breaker
        self.policy = policy
        self.timeout = timeout
        self.fallback = fallback
        self.failure_on, self.ignore = _breaker_rules(breaker)
        self.passes_error = fallback is not None and _accepts_error(fallback)

    def answers(self, error: BaseException) -> bool:
        """Whether ``fallback`` answers a final error (the breaker's rules)."""
        if isinstance(error, CircuitOpenError):
            return True
        return (
            isinstance(error, Exception)
            and isinstance(error, self.failure_on)
            and not isinstance(error, self.ignore)
        )

    def fall_back(self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fallback = cast(Callable[..., Any], self.fallback)
        if self.passes_error:
            return fallback(*args, **kwargs, error=error)
        return fallback(*args, **kwargs)

    def decorate(self, fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            return cast(Callable[P, R], self._async(cast(Callable[..., Awaitable[Any]], fn)))
        if self.timeout is not None:
            raise ConfigurationError(
                f"timeout works on async def only, got timeout={self.timeout!r} for the plain "
                f"def {getattr(fn, '__qualname__', fn)!r}: a thread cannot be interrupted "
                "safely; use the breaker's slow_call_threshold to count slow calls as failures",
                parameter="timeout",
                value=self.timeout,
            )
        return cast(Callable[P, R], self._sync(fn))

    def _sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        attempt = fn
        breaker = self.breaker
        if breaker is not None:

            def through_breaker(*args: Any, **kwargs: Any) -> Any:
                return breaker.call(fn, *args, **kwargs)

            attempt = functools.wraps(fn)(through_breaker)
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
            return fall_back(caught, args, kwargs)

        return guarded

    def _async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        attempt = fn
        if self.timeout is not None:
            limit = self.timeout

            async def timed(*args: Any, **kwargs: Any) -> Any:
                return await asyncio.wait_for(fn(*args, **kwargs), limit)

            attempt = functools.wraps(fn)(timed)
        breaker = self.breaker
        if breaker is not None:
            inner = attempt

            async def through_breaker(*args: Any, **kwargs: Any) -> Any:
                return await breaker.call_async(inner, *args, **kwargs)

            attempt = functools.wraps(fn)(through_breaker)
        if self.policy is not None:
            attempt = _decorate(attempt, self.policy, None, None)
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
