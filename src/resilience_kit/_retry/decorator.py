"""The ``@retry`` decorator: a first attempt at the cost of a plain call, then the loop."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast, overload

from typing_extensions import ParamSpec

from resilience_kit._callables import is_async_callable
from resilience_kit._retry.loop import _Retrier, _retry_async, _retry_sync, _Run
from resilience_kit._retry.policy import RetryPolicy
from resilience_kit._retry.presets import _resolve
from resilience_kit._retry.sleeps import _pause_async, _pause_sync, _sleepers
from resilience_kit._validation import check_callable
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


def _decorate(
    fn: Callable[P, R],
    policy: RetryPolicy,
    clock: Clock | None,
    sleep: Callable[[float], Any] | None,
) -> Callable[P, R]:
    if isinstance(fn, (staticmethod, classmethod)):
        # Under @staticmethod / @classmethod: retry the function inside and wrap it again, so
        # the descriptor still binds (or does not bind) the class as before.
        inner = _decorate(fn.__func__, policy, clock, sleep)
        return cast(Callable[P, R], type(fn)(inner))
    if not callable(fn):
        raise ConfigurationError(
            f"retry decorates a function, got {fn!r}", parameter="fn", value=fn
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise ConfigurationError(
            f"retry cannot retry a generator function, got {fn!r}: retrying would only "
            "retry creating the generator",
            parameter="fn",
            value=fn,
        )
    clock = default_clock() if clock is None else clock
    retrier = _Retrier(policy, clock)
    sync_sleep, async_sleep = _sleepers(clock, sleep)
    if is_async_callable(fn):
        async_fn = cast(Callable[..., Awaitable[Any]], fn)
        return cast(Callable[P, R], _wraps(_async_form(async_fn, retrier, async_sleep), fn))
    if inspect.iscoroutinefunction(sync_sleep):
        raise ConfigurationError(
            f"sleep must be a plain function for a plain def, got {sleep!r}",
            parameter="sleep",
            value=sleep,
        )
    if inspect.iscoroutinefunction(policy.on_retry):
        raise ConfigurationError(
            f"on_retry must be a plain function for the plain def "
            f"{getattr(fn, '__qualname__', fn)!r}, got the coroutine function "
            f"{policy.on_retry!r}: nothing would await it",
            parameter="on_retry",
            value=policy.on_retry,
        )
    return cast(Callable[P, R], _wraps(_sync_form(fn, retrier, sync_sleep), fn))


# Each form has a twin that also judges the result: a policy without retry_if_result keeps a
# first attempt that returns the function's result straight away. The locals are bound once,
# at decoration: the first attempt pays for nothing else.


def _async_form(
    async_fn: Callable[..., Awaitable[Any]], retrier: _Retrier, sleep: Callable[[float], Any]
) -> Callable[..., Awaitable[Any]]:
    count_call, takes_over = retrier.count_call, retrier.takes_over
    judge, catch = retrier.judge_result, retrier.catch
    monotonic = retrier.clock.monotonic
    # Reading the clock costs ~40 ns; only a deadline needs the start time.
    timed = retrier.policy.deadline is not None
    async_pause = _pause_async(sleep)

    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        count_call()
        start = monotonic() if timed else 0.0
        try:
            return await async_fn(*args, **kwargs)
        except catch as error:
            verdict = takes_over(error)
            if verdict is None:
                raise
            first = error
        # Outside the except block, so later attempts do not see `first` as the
        # exception being handled (it would become their __context__).
        run = _Run(retrier, start, error=first, verdict=verdict)
        return await _retry_async(run, async_pause, async_fn, args, kwargs)

    async def async_judging_wrapper(*args: Any, **kwargs: Any) -> Any:
        count_call()
        start = monotonic() if timed else 0.0
        try:
            result = await async_fn(*args, **kwargs)
        except catch as error:
            verdict = takes_over(error)
            if verdict is None:
                raise
            run = _Run(retrier, start, error=error, verdict=verdict)
        else:
            if not judge(result):  # type: ignore[misc]  # set for this form
                return result
            run = _Run(retrier, start, result=result)
        return await _retry_async(run, async_pause, async_fn, args, kwargs)

    return async_wrapper if judge is None else async_judging_wrapper


def _sync_form(
    fn: Callable[..., Any], retrier: _Retrier, sleep: Callable[[float], Any]
) -> Callable[..., Any]:
    count_call, takes_over = retrier.count_call, retrier.takes_over
    judge, catch = retrier.judge_result, retrier.catch
    monotonic = retrier.clock.monotonic
    timed = retrier.policy.deadline is not None
    sync_pause = _pause_sync(sleep)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count_call()
        start = monotonic() if timed else 0.0
        try:
            return fn(*args, **kwargs)
        except catch as error:
            verdict = takes_over(error)
            if verdict is None:
                raise
            first = error
        run = _Run(retrier, start, error=first, verdict=verdict)
        return _retry_sync(run, sync_pause, fn, args, kwargs)

    def judging_wrapper(*args: Any, **kwargs: Any) -> Any:
        count_call()
        start = monotonic() if timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except catch as error:
            verdict = takes_over(error)
            if verdict is None:
                raise
            run = _Run(retrier, start, error=error, verdict=verdict)
        else:
            if not judge(result):  # type: ignore[misc]  # set for this form
                return result
            run = _Run(retrier, start, result=result)
        return _retry_sync(run, sync_pause, fn, args, kwargs)

    return wrapper if judge is None else judging_wrapper


def _wraps(wrapper: Callable[..., Any], fn: object) -> Callable[..., Any]:
    """``functools.update_wrapper`` for functions; a callable instance keeps its own state.

    Copying an instance's ``__dict__`` onto the wrapper would freeze a snapshot of its
    attributes there (a client's counters, its connection), which later reads would mistake for
    the live ones.
    """
    if inspect.isroutine(fn) or isinstance(fn, functools.partial):
        return functools.update_wrapper(wrapper, cast("Callable[..., Any]", fn))
    return functools.update_wrapper(wrapper, cast("Callable[..., Any]", fn), updated=())


@overload
def retry(policy_or_preset: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry(
    policy_or_preset: RetryPolicy | str = "external_api",
    *,
    clock: Clock | None = None,
    sleep: Callable[[float], Any] | None = None,
    **overrides: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry(
    policy_or_preset: RetryPolicy | str | Callable[..., Any] = "external_api",
    *,
    clock: Clock | None = None,
    sleep: Callable[[float], Any] | None = None,
    **overrides: Any,
) -> Any:
    """Retry a function (``def`` or ``async def``) according to a policy.

    Use it as ``@retry`` (the ``external_api`` preset), ``@retry("database")``,
    ``@retry(DATABASE, attempts=5)`` or ``@retry(RetryPolicy(...))``. The decorated function
    keeps its signature. Its first attempt runs directly, at almost the cost of a plain call;
    tenacity runs the retries after a retryable failure.

    Args:
        policy_or_preset: A [`RetryPolicy`][resilience_kit.RetryPolicy] or a preset name:
            ``"database"``, ``"redis"``, ``"external_api"``, ``"internal_api"``, ``"best_effort"``.
        clock: Where the deadline reads the time;
            [`resilience_kit.clock.default_clock()`][resilience_kit.clock.default_clock] at
            decoration if None.
        sleep: Replaces the sleeping between attempts (a coroutine function is fine for an
            ``async def``). If None: the clock's own ``sleep``/``async_sleep`` when it has them
            (so a [`FakeClock`][resilience_kit.testing.FakeClock] advances instead of blocking),
            else `time.sleep()` / `asyncio.sleep()`.
        **overrides: [`RetryPolicy`][resilience_kit.RetryPolicy] fields replacing the policy's, e.g.
            ``attempts=5``.

    Raises:
        ConfigurationError: An unknown preset, an unknown or out-of-range override, or a
            generator function to decorate.

    Examples:
        ```python
        from resilience_kit.retry import retry


        @retry("database", attempts=5)
        def load_profile(user_id: int) -> dict[str, object]: ...
        ```
    """
    if isinstance(policy_or_preset, (staticmethod, classmethod)) or (
        callable(policy_or_preset) and not isinstance(policy_or_preset, (RetryPolicy, str))
    ):
        fn = policy_or_preset
        return _decorate(fn, _resolve("external_api", overrides), clock, sleep)
    policy = _resolve(policy_or_preset, overrides)
    check_callable("sleep", sleep)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return _decorate(fn, policy, clock, sleep)

    return decorator
