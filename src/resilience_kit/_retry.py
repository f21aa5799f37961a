"""Retry policies, presets, statistics and the ``@retry`` decorator (implementation).

The public names live in :mod:`resilience_kit.retry`; this module holds the machinery.

tenacity runs every retry: the waits, the stop conditions, the retry predicate, the sleeping.
What this module adds is a frozen policy object, presets, exact statistics, logging with
redaction, a deadline read from the library's clock, and a first attempt that costs almost
nothing: the wrapper calls the function directly and only a failure that the policy retries
builds a tenacity loop, seeded with that first failure as attempt 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeVar, cast, overload

import tenacity
from typing_extensions import ParamSpec

from resilience_kit import _env
from resilience_kit._redact import redact
from resilience_kit._transient import (
    retry_after_from_response,
    retryable_http_error,
    transient_database_error,
    transient_redis_error,
)
from resilience_kit._validation import (
    check_callable,
    check_choice,
    check_exception_types,
    check_int,
    check_number,
)
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import CircuitOpenError, ConfigurationError

__all__ = [
    "BEST_EFFORT",
    "DATABASE",
    "EXTERNAL_API",
    "INTERNAL_API",
    "PRESETS",
    "REDIS",
    "RetryPolicy",
    "RetryStats",
    "reset_retry_stats",
    "retry",
    "retry_stats",
]

P = ParamSpec("P")
R = TypeVar("R")

_LOGGER = logging.getLogger("resilience_kit.retry")
_MESSAGE_LIMIT = 200  # characters of an exception message that reach the log

WaitKind = Literal["exponential", "fixed", "random_exponential"]
OnExhausted = Literal["raise", "return_default"]
_WAIT_KINDS: Final = ("exponential", "fixed", "random_exponential")
_ON_EXHAUSTED: Final = ("raise", "return_default")


# --- the policy ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How to retry a call: a frozen, validated value shared by any number of functions.

    An error raised by the call is looked up in this order:

    1. ``give_up_on`` (which always contains :class:`~resilience_kit.CircuitOpenError`): the
       policy stops at once and ``on_exhausted`` decides the outcome.
    2. ``retry_on`` or ``retry_if``: retried until ``attempts`` or ``deadline`` run out, then
       ``on_exhausted`` decides.
    3. Anything else propagates untouched after the attempt that raised it.

    ``KeyboardInterrupt``, ``SystemExit``, ``asyncio.CancelledError`` and every other
    ``BaseException`` that is not an ``Exception`` always propagate at once.

    Attributes:
        attempts: Total attempts, the first included (>= 1).
        wait: ``"exponential"`` waits ``multiplier * 2 ** (n - 1)`` seconds after attempt
            ``n``, clamped to ``[min_wait, max_wait]`` (tenacity's ``wait_exponential``);
            ``"fixed"`` waits ``min_wait``; ``"random_exponential"`` waits a uniform random
            time up to the exponential value ("full jitter").
        min_wait: Shortest wait in seconds (>= 0).
        max_wait: Longest wait in seconds (>= ``min_wait``); caps jitter and ``Retry-After``.
        multiplier: Scale of the exponential waits (> 0).
        jitter: Up to this many seconds of uniform random time added to each wait (>= 0).
        deadline: Total seconds for all attempts and waits (> 0), or None. No wait ends past
            it: the last one is shortened, and no attempt starts after it.
        retry_on: Exception classes to retry (subclasses of ``Exception``).
        give_up_on: Exception classes never retried, even if ``retry_on`` matches them.
        on_exhausted: ``"raise"`` re-raises the last attempt's exception unchanged;
            ``"return_default"`` returns ``default`` instead.
        default: What ``"return_default"`` returns.
        log_level: Level of the log record written before each wait.
        name: Key of this policy's figures in :func:`retry_stats`, and shown in logs.
        retry_if: Also retry an error for which this returns True (for errors recognised by
            their attributes rather than their class).
        retry_after: Reads a server-requested delay from an error: called with the error and
            the current wall-clock time, returns seconds or None. The wait is at least that
            long, still capped by ``max_wait`` and ``deadline``.
    """

    attempts: int = 3
    wait: WaitKind = "exponential"
    min_wait: float = 0.5
    max_wait: float = 10.0
    multiplier: float = 1.0
    jitter: float = 0.0
    deadline: float | None = None
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()
    on_exhausted: OnExhausted = "raise"
    default: Any = None
    log_level: int = logging.WARNING
    name: str = "custom"
    retry_if: Callable[[BaseException], bool] | None = None
    retry_after: Callable[[BaseException, float], float | None] | None = None

    def __post_init__(self) -> None:
        check_int("attempts", self.attempts, minimum=1)
        check_choice("wait", self.wait, _WAIT_KINDS)
        set_ = functools.partial(object.__setattr__, self)
        set_("min_wait", check_number("min_wait", self.min_wait, minimum=0))
        set_("max_wait", check_number("max_wait", self.max_wait, minimum=self.min_wait))
        set_(
            "multiplier",
            check_number("multiplier", self.multiplier, minimum=0, min_inclusive=False),
        )
        set_("jitter", check_number("jitter", self.jitter, minimum=0))
        if self.deadline is not None:
            set_(
                "deadline", check_number("deadline", self.deadline, minimum=0, min_inclusive=False)
            )
        retry_on = check_exception_types("retry_on", self.retry_on)
        for cls in retry_on:
            if not issubclass(cls, Exception):
                raise ConfigurationError(
                    "retry_on must be subclasses of Exception (KeyboardInterrupt, SystemExit "
                    f"and CancelledError are never retried), got {self.retry_on!r}",
                    parameter="retry_on",
                    value=self.retry_on,
                )
        set_("retry_on", retry_on)
        give_up_on = check_exception_types("give_up_on", self.give_up_on)
        if not issubclass(CircuitOpenError, give_up_on):
            # An open breaker answers "not now"; retrying would only burn the wait.
            give_up_on = (*give_up_on, CircuitOpenError)
        set_("give_up_on", give_up_on)
        check_choice("on_exhausted", self.on_exhausted, _ON_EXHAUSTED)
        check_int("log_level", self.log_level, minimum=0)
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(
                f"name must be a non-empty str, got {self.name!r}",
                parameter="name",
                value=self.name,
            )
        check_callable("retry_if", self.retry_if)
        check_callable("retry_after", self.retry_after)

    def replace(self, **changes: Any) -> RetryPolicy:
        """Return a copy with ``changes`` applied (and validated).

        Example:
            >>> DATABASE.replace(attempts=5).attempts
            5
        """
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ConfigurationError(
                f"{unknown[0]} is not a RetryPolicy field; fields are {', '.join(_FIELD_ORDER)}",
                parameter=unknown[0],
                value=changes[unknown[0]],
            )
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        prefix: str,
        *,
        base: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> RetryPolicy:
        """Build a policy from ``PREFIX_FIELD`` environment variables over ``base``.

        Every field can be set: ``PREFIX_ATTEMPTS``, ``_WAIT``, ``_MIN_WAIT``, ``_MAX_WAIT``,
        ``_MULTIPLIER``, ``_JITTER``, ``_DEADLINE`` (a number or ``none``), ``_RETRY_ON`` and
        ``_GIVE_UP_ON`` (comma-separated import paths such as ``builtins.OSError``),
        ``_ON_EXHAUSTED``, ``_DEFAULT`` (JSON), ``_LOG_LEVEL`` (a name or a number), ``_NAME``,
        ``_RETRY_IF`` and ``_RETRY_AFTER`` (import paths of callables). Unset or blank
        variables keep ``base``'s value.

        Args:
            prefix: Variable prefix, e.g. ``"REDIS_RETRY"`` for ``REDIS_RETRY_ATTEMPTS``.
            base: The policy supplying every value the environment does not set
                (``RetryPolicy()`` if None).
            environ: The variables to read (``os.environ`` if None).

        Raises:
            ConfigurationError: A variable does not parse or is out of range; the message
                names the variable and its value.
        """
        environ = os.environ if environ is None else environ
        base = RetryPolicy() if base is None else base
        prefix = prefix.rstrip("_") + "_"
        changes: dict[str, Any] = {}
        raw_values: dict[str, tuple[str, str]] = {}
        for field in _FIELD_ORDER:
            variable = prefix + field.upper()
            raw = _env.env_value(environ, variable)
            if raw is None:
                continue
            changes[field] = _ENV_PARSERS[field](variable, raw)
            raw_values[field] = (variable, raw)
        try:
            return base.replace(**changes)
        except ConfigurationError as error:
            # A range error between two fields (MIN_WAIT above MAX_WAIT) must still point at
            # the variables, not only at the field names.
            variable, raw = raw_values.get(error.parameter or "", next(iter(raw_values.values())))
            settings = ", ".join(f"{v}={r!r}" for v, r in raw_values.values())
            raise ConfigurationError(
                f"{error} (environment: {settings})", parameter=variable, value=raw
            ) from None


_FIELD_ORDER: Final = tuple(f.name for f in dataclasses.fields(RetryPolicy))
_FIELD_NAMES: Final = frozenset(_FIELD_ORDER)


def _parse_exception_types(variable: str, raw: str) -> tuple[type[BaseException], ...]:
    classes = []
    for path in raw.split(","):
        cls = _env.parse_object(variable, path.strip())
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ConfigurationError(
                f"{variable} must be import paths of exception classes, got {raw!r}",
                parameter=variable,
                value=raw,
            )
        classes.append(cls)
    return tuple(classes)


def _parse_callable(variable: str, raw: str) -> object:
    target = _env.parse_object(variable, raw)
    if not callable(target):
        raise ConfigurationError(
            f"{variable} must be the import path of a callable, got {raw!r}",
            parameter=variable,
            value=raw,
        )
    return target


def _parse_json(variable: str, raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigurationError(
            f"{variable} must be a JSON value, got {raw!r}", parameter=variable, value=raw
        ) from None


_ENV_PARSERS: Final[dict[str, Callable[[str, str], Any]]] = {
    "attempts": functools.partial(_env.parse_int, minimum=1),
    "wait": functools.partial(_env.parse_choice, choices=_WAIT_KINDS),
    "min_wait": functools.partial(_env.parse_float, minimum=0),
    "max_wait": functools.partial(_env.parse_float, minimum=0),
    "multiplier": functools.partial(_env.parse_float, minimum=0, strict=True),
    "jitter": functools.partial(_env.parse_float, minimum=0),
    "deadline": functools.partial(_env.parse_optional_float, minimum=0, strict=True),
    "retry_on": _parse_exception_types,
    "give_up_on": _parse_exception_types,
    "on_exhausted": functools.partial(_env.parse_choice, choices=_ON_EXHAUSTED),
    "default": _parse_json,
    "log_level": _env.parse_log_level,
    "name": lambda variable, raw: raw,
    "retry_if": _parse_callable,
    "retry_after": _parse_callable,
}


# --- presets ---------------------------------------------------------------------------------

DATABASE: Final = RetryPolicy(
    name="database",
    attempts=3,
    wait="exponential",
    multiplier=1.0,
    min_wait=2.0,
    max_wait=10.0,
    retry_on=(),
    retry_if=transient_database_error,
    on_exhausted="raise",
)
"""Transient database errors: 3 attempts, waits 2 s then 2 s (exponential, 2..10 s), re-raises."""

REDIS: Final = RetryPolicy.from_env(
    "REDIS_RETRY",
    base=RetryPolicy(
        name="redis",
        attempts=3,
        wait="exponential",
        multiplier=1.0,
        min_wait=0.5,
        max_wait=2.0,
        retry_on=(),
        retry_if=transient_redis_error,
        on_exhausted="return_default",
        default=None,
    ),
)
"""Redis connection errors and timeouts: 3 attempts, waits 1 s then 2 s (exponential,
0.5..2 s), then returns None. ``REDIS_RETRY_*`` variables override it at import."""

EXTERNAL_API: Final = RetryPolicy(
    name="external_api",
    attempts=3,
    wait="exponential",
    multiplier=4.0,
    min_wait=4.0,
    max_wait=30.0,
    jitter=1.0,
    retry_on=(),
    retry_if=retryable_http_error,
    retry_after=retry_after_from_response,
    on_exhausted="raise",
)
"""Third-party HTTP APIs: 3 attempts, waits 4 s then 8 s plus up to 1 s of jitter, honours
``Retry-After`` up to 30 s; retries 429, 5xx, connection errors and timeouts."""

INTERNAL_API: Final = RetryPolicy(
    name="internal_api",
    attempts=3,
    wait="fixed",
    min_wait=2.0,
    retry_on=(),
    retry_if=retryable_http_error,
    on_exhausted="raise",
)
"""Your own services: 3 attempts, a fixed 2 s between them; retries 429, 5xx, connection
errors and timeouts."""

BEST_EFFORT: Final = RetryPolicy(
    name="best_effort",
    attempts=2,
    wait="fixed",
    min_wait=0.5,
    retry_on=(Exception,),
    on_exhausted="return_default",
    default=None,
)
"""Side work that must never fail the caller: 2 attempts, 0.5 s apart, then returns None."""

# Keyed by the preset's own name even if REDIS_RETRY_NAME renamed REDIS.
PRESETS: Final[Mapping[str, RetryPolicy]] = {
    "database": DATABASE,
    "redis": REDIS,
    "external_api": EXTERNAL_API,
    "internal_api": INTERNAL_API,
    "best_effort": BEST_EFFORT,
}
"""The presets by the names ``@retry("...")`` accepts."""


def _resolve(policy_or_preset: RetryPolicy | str, overrides: Mapping[str, Any]) -> RetryPolicy:
    if isinstance(policy_or_preset, RetryPolicy):
        policy = policy_or_preset
    elif isinstance(policy_or_preset, str) and policy_or_preset in PRESETS:
        policy = PRESETS[policy_or_preset]
    else:
        raise ConfigurationError(
            "policy_or_preset must be a RetryPolicy or one of "
            f"{', '.join(repr(n) for n in PRESETS)}, got {policy_or_preset!r}",
            parameter="policy_or_preset",
            value=policy_or_preset,
        )
    return policy.replace(**overrides) if overrides else policy


# --- statistics ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RetryStats:
    """A snapshot of one policy name's figures since start-up (or the last reset).

    Attributes:
        calls: Calls of decorated functions.
        attempts: Attempts made, first attempts included (``calls + retries``).
        retries: Attempts after the first.
        successes_after_retry: Calls that failed at first and then succeeded.
        exhausted: Calls that ended on a retryable error with no attempt or time left.
    """

    calls: int
    attempts: int
    retries: int
    successes_after_retry: int
    exhausted: int


def _read(counter: itertools.count[int]) -> int:
    # The next value of a count without taking it: its repr is "count(N)". (__reduce__ would
    # do too, but is deprecated for itertools objects from Python 3.12.)
    return int(repr(counter)[6:-1])


class _PolicyCounters:
    """Counters of one policy name, exact under threads and tasks.

    ``next()`` on an ``itertools.count`` is a single C call that holds the GIL, so concurrent
    increments are never lost, and the success path pays one of them. Resetting records a
    baseline instead of swapping counters, because wrappers hold the counters directly.
    """

    __slots__ = ("_baseline", "calls", "exhausted", "retries", "successes")

    def __init__(self) -> None:
        self.calls = itertools.count()
        self.retries = itertools.count()
        self.successes = itertools.count()
        self.exhausted = itertools.count()
        self._baseline = (0, 0, 0, 0)

    def _values(self) -> tuple[int, int, int, int]:
        return (
            _read(self.calls),
            _read(self.retries),
            _read(self.successes),
            _read(self.exhausted),
        )

    def snapshot(self) -> RetryStats:
        calls, retries, successes, exhausted = (
            now - then for now, then in zip(self._values(), self._baseline, strict=True)
        )
        return RetryStats(calls, calls + retries, retries, successes, exhausted)

    def reset(self) -> None:
        self._baseline = self._values()


_COUNTERS: dict[str, _PolicyCounters] = {}
_COUNTERS_LOCK = threading.Lock()


def _counters_for(name: str) -> _PolicyCounters:
    with _COUNTERS_LOCK:
        counters = _COUNTERS.get(name)
        if counters is None:
            counters = _COUNTERS[name] = _PolicyCounters()
        return counters


def retry_stats() -> Mapping[str, RetryStats]:
    """Figures per policy name, for every policy that has decorated a function.

    Each figure is exact under threads and concurrent tasks. While calls are in flight the
    figures of one policy may be read a few increments apart from each other.
    """
    with _COUNTERS_LOCK:
        counters = dict(_COUNTERS)
    return {name: c.snapshot() for name, c in counters.items()}


def reset_retry_stats() -> None:
    """Start every policy's figures again from zero (for tests; calls in flight still count)."""
    with _COUNTERS_LOCK:
        for counters in _COUNTERS.values():
            counters.reset()


# --- no_waits --------------------------------------------------------------------------------


class _NoWaits:
    """How many ``testing.no_waits()`` blocks are open, in any thread; sleeps skip while > 0."""

    __slots__ = ("depth", "lock")

    def __init__(self) -> None:
        self.depth = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.depth += 1

    def exit(self) -> None:
        with self.lock:
            self.depth -= 1


_NO_WAITS = _NoWaits()


def _pause_sync(sleep: Callable[[float], object]) -> Callable[[float], None]:
    def pause(seconds: float) -> None:
        if not _NO_WAITS.depth:
            sleep(seconds)

    return pause


def _pause_async(sleep: Callable[[float], object]) -> Callable[[float], Awaitable[None]]:
    async def pause(seconds: float) -> None:
        if not _NO_WAITS.depth:
            slept = sleep(seconds)
            if inspect.isawaitable(slept):
                await slept

    return pause


# --- the retry core (shared by sync and async; knows nothing about asyncio) -------------------

_RETRY, _GIVE_UP, _PROPAGATE = 0, 1, 2


class _Retrier:
    """What one decorated function knows about retrying, fixed at decoration."""

    __slots__ = (
        "base_wait",
        "clock",
        "count_call",
        "counters",
        "policy",
        "returns_default",
    )

    def __init__(self, policy: RetryPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self.counters = _counters_for(policy.name)
        self.count_call = self.counters.calls.__next__
        self.returns_default = policy.on_exhausted == "return_default"
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

    def verdict(self, error: BaseException) -> int:
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
            except Exception:
                _LOGGER.exception("retry_if of policy %r failed; not retrying", policy.name)
        return _PROPAGATE

    def takes_over(self, error: BaseException) -> bool:
        """Whether a first attempt's error goes to the retry loop instead of the caller."""
        verdict = self.verdict(error)
        return verdict == _RETRY or (verdict == _GIVE_UP and self.returns_default)


def _message(error: BaseException) -> str:
    try:
        return redact(str(error), max_length=_MESSAGE_LIMIT)
    except Exception:
        return "<unprintable message>"


class _Run:
    """One call's retries after its first attempt failed: tenacity's callbacks live here."""

    __slots__ = ("first", "retrier", "start", "state")

    def __init__(self, retrier: _Retrier, first: BaseException, start: float) -> None:
        self.retrier = retrier
        self.first = first
        self.start = start
        self.state: tenacity.RetryCallState | None = None

    def remaining(self) -> float:
        deadline = self.retrier.policy.deadline
        if deadline is None:
            return float("inf")
        return deadline - (self.retrier.clock.monotonic() - self.start)

    def options(self) -> dict[str, Any]:
        return {
            "stop": self.stop,
            "wait": self.wait,
            "retry": self.should_retry,
            "before_sleep": self.before_sleep,
            "retry_error_callback": _exhausted,
        }

    def should_retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        return error is not None and self.retrier.verdict(error) == _RETRY

    def stop(self, state: tenacity.RetryCallState) -> bool:
        return state.attempt_number >= self.retrier.policy.attempts or self.remaining() <= 0

    def wait(self, state: tenacity.RetryCallState) -> float:
        retrier = self.retrier
        policy = retrier.policy
        seconds = float(retrier.base_wait(state))
        if policy.retry_after is not None and state.outcome is not None:
            error = state.outcome.exception()
            hint = None
            if error is not None:
                try:
                    hint = policy.retry_after(error, retrier.clock.wall())
                except Exception:
                    _LOGGER.exception("retry_after of policy %r failed", policy.name)
            if hint is not None and hint > seconds:
                seconds = hint
        return max(0.0, min(seconds, policy.max_wait, self.remaining()))

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        policy = self.retrier.policy
        if not _LOGGER.isEnabledFor(policy.log_level):
            return
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        with contextlib.suppress(Exception):  # a broken log handler must not break the call
            _LOGGER.log(
                policy.log_level,
                "retry policy %r: attempt %d of %d failed with %s: %s; retrying in %.3fs",
                policy.name,
                state.attempt_number,
                policy.attempts,
                type(error).__name__,
                _message(error) if error is not None else "",
                wait,
                extra={
                    "retry_policy": policy.name,
                    "retry_attempt": state.attempt_number,
                    "retry_wait": wait,
                    "error_type": type(error).__name__,
                },
            )

    def seed(self, state: tenacity.RetryCallState) -> None:
        """Record the wrapper's own first attempt as tenacity's attempt 1."""
        self.state = state
        first = self.first
        state.set_exception((type(first), first, first.__traceback__))

    def attempt_starts(self) -> None:
        next(self.retrier.counters.retries)

    def absorbs(self, error: BaseException) -> bool:
        """Whether an error that ended the loop becomes the default (else it propagates)."""
        return self.retrier.returns_default and self.retrier.verdict(error) == _GIVE_UP

    def give_up(self, error: BaseException) -> Any:
        self._log_default(error, "gave up at once")
        return self.retrier.policy.default

    def finish(self) -> Any:
        """The call's result once tenacity's loop has ended normally."""
        state = self.state
        assert state is not None  # noqa: S101 - the loop ran
        assert state.outcome is not None  # noqa: S101
        outcome = state.outcome
        if not outcome.failed:
            next(self.retrier.counters.successes)
            return outcome.result()
        next(self.retrier.counters.exhausted)
        error = outcome.exception()
        assert error is not None  # noqa: S101 - a failed outcome holds its exception
        if not self.retrier.returns_default:
            raise error
        self._log_default(error, f"exhausted after {state.attempt_number} attempts")
        return self.retrier.policy.default

    def _log_default(self, error: BaseException, why: str) -> None:
        policy = self.retrier.policy
        with contextlib.suppress(Exception):  # a broken log handler must not break the call
            _LOGGER.log(
                policy.log_level,
                "retry policy %r %s on %s: %s; returning the default",
                policy.name,
                why,
                type(error).__name__,
                _message(error),
                extra={"retry_policy": policy.name, "error_type": type(error).__name__},
            )


def _exhausted(state: tenacity.RetryCallState) -> None:
    """tenacity's retry_error_callback: end the loop quietly; _Run.finish reads the outcome."""


def _retry_sync(
    run: _Run,
    pause: Callable[[float], None],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if run.retrier.verdict(run.first) == _GIVE_UP:
        return run.give_up(run.first)
    try:
        for attempt in tenacity.Retrying(sleep=pause, **run.options()):
            if run.state is None:
                run.seed(attempt.retry_state)
                continue
            run.attempt_starts()
            try:
                result = fn(*args, **kwargs)
            except Exception as error:
                attempt.retry_state.set_exception((type(error), error, error.__traceback__))
            else:
                attempt.retry_state.set_result(result)
    except Exception as error:
        # tenacity re-raised a failure its predicate declined to retry.
        if not run.absorbs(error):
            raise
        return run.give_up(error)
    return run.finish()


async def _retry_async(
    run: _Run,
    pause: Callable[[float], Awaitable[None]],
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if run.retrier.verdict(run.first) == _GIVE_UP:
        return run.give_up(run.first)
    try:
        async for attempt in tenacity.AsyncRetrying(sleep=pause, **run.options()):
            if run.state is None:
                run.seed(attempt.retry_state)
                continue
            run.attempt_starts()
            try:
                result = await fn(*args, **kwargs)
            except Exception as error:
                attempt.retry_state.set_exception((type(error), error, error.__traceback__))
            else:
                attempt.retry_state.set_result(result)
    except Exception as error:
        if not run.absorbs(error):
            raise
        return run.give_up(error)
    return run.finish()


# --- the decorator ---------------------------------------------------------------------------


def _sleepers(
    clock: Clock, sleep: Callable[[float], Any] | None
) -> tuple[Callable[[float], Any], Callable[[float], Any]]:
    """The sync and async sleep functions: given, the clock's own (a FakeClock), or real."""
    if sleep is not None:
        return sleep, sleep
    return (
        getattr(clock, "sleep", None) or time.sleep,
        getattr(clock, "async_sleep", None) or asyncio.sleep,
    )


def _decorate(
    fn: Callable[P, R],
    policy: RetryPolicy,
    clock: Clock | None,
    sleep: Callable[[float], Any] | None,
) -> Callable[P, R]:
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
    count_call = retrier.count_call
    takes_over = retrier.takes_over
    monotonic = clock.monotonic
    # Reading the clock costs ~40 ns; only a deadline needs the start time.
    timed = policy.deadline is not None

    if inspect.iscoroutinefunction(fn):
        async_fn = cast(Callable[..., Awaitable[Any]], fn)
        async_pause = _pause_async(async_sleep)

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            count_call()
            start = monotonic() if timed else 0.0
            try:
                return await async_fn(*args, **kwargs)
            except Exception as error:
                if not takes_over(error):
                    raise
                first = error
            # Outside the except block, so later attempts do not see `first` as the
            # exception being handled (it would become their __context__).
            run = _Run(retrier, first, start)
            return await _retry_async(run, async_pause, async_fn, args, kwargs)

        return cast(Callable[P, R], functools.update_wrapper(async_wrapper, fn))

    if inspect.iscoroutinefunction(sync_sleep):
        raise ConfigurationError(
            f"sleep must be a plain function for a plain def, got {sleep!r}",
            parameter="sleep",
            value=sleep,
        )
    sync_pause = _pause_sync(sync_sleep)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count_call()
        start = monotonic() if timed else 0.0
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            if not takes_over(error):
                raise
            first = error
        return _retry_sync(_Run(retrier, first, start), sync_pause, fn, args, kwargs)

    return cast(Callable[P, R], functools.update_wrapper(wrapper, fn))


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
        policy_or_preset: A :class:`RetryPolicy` or a preset name: ``"database"``,
            ``"redis"``, ``"external_api"``, ``"internal_api"``, ``"best_effort"``.
        clock: Where the deadline reads the time; :func:`resilience_kit.clock.default_clock`
            at decoration if None.
        sleep: Replaces the sleeping between attempts (a coroutine function is fine for an
            ``async def``). If None: the clock's own ``sleep``/``async_sleep`` when it has them
            (so a :class:`~resilience_kit.testing.FakeClock` advances instead of blocking),
            else :func:`time.sleep` / :func:`asyncio.sleep`.
        **overrides: :class:`RetryPolicy` fields replacing the policy's, e.g. ``attempts=5``.

    Raises:
        ConfigurationError: An unknown preset, an unknown or out-of-range override, or a
            generator function to decorate.

    Example:
        >>> @retry("database", attempts=5)
        ... def load_profile(user_id: int) -> dict[str, object]: ...
    """
    if callable(policy_or_preset) and not isinstance(policy_or_preset, (RetryPolicy, str)):
        fn = policy_or_preset
        return _decorate(fn, _resolve("external_api", overrides), clock, sleep)
    policy = _resolve(policy_or_preset, overrides)
    check_callable("sleep", sleep)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return _decorate(fn, policy, clock, sleep)

    return decorator
