"""Retry policies, presets, statistics and the ``@retry`` decorator (implementation).

The public names live in `resilience_kit.retry`; this module holds the machinery.

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
import math
import numbers
import operator
import os
import threading
import time
import traceback
import types
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeVar, cast, overload

import tenacity
from typing_extensions import ParamSpec

from resilience_kit import _env
from resilience_kit._callables import is_async_callable
from resilience_kit._redact import CUT_MARGIN, redact
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

    1. ``give_up_on`` (which always contains [`CircuitOpenError`][resilience_kit.CircuitOpenError]):
       the policy stops at once and ``on_exhausted`` decides the outcome.
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
        deadline: Total seconds for all attempts and waits (> 0), or None. The final attempt
            is guaranteed 1% of it: no wait ends later than 99% of the deadline (the last one
            is shortened to end there, and the attempt after it is the last), and the retries
            stop once less than 1% is left.
        retry_on: Exception classes to retry (subclasses of ``Exception``).
        give_up_on: Exception classes never retried, even if ``retry_on`` matches them.
        on_exhausted: ``"raise"`` re-raises the last attempt's exception unchanged;
            ``"return_default"`` returns ``default`` instead.
        default: What ``"return_default"`` returns.
        log_level: Level of the log record written before each wait.
        name: Key of this policy's figures in [`retry_stats()`][resilience_kit.retry_stats], and
            shown in logs.
        retry_if: Also retry an error for which this returns True (for errors recognised by
            their attributes rather than their class).
        retry_after: Reads a server-requested delay from an error: called with the error and
            the current wall-clock time, returns seconds or None. The wait is at least that
            long, still capped by ``max_wait`` and ``deadline``. An answer that is not a
            finite real number >= 0, or an exception, is logged and ignored.
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

        Examples:
            ```python
            from resilience_kit import DATABASE

            assert DATABASE.replace(attempts=5).attempts == 5
            ```
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
            raise _blame_variables(error, base, raw_values) from None


def _blame_variables(
    error: ConfigurationError, base: RetryPolicy, raw_values: Mapping[str, tuple[str, str]]
) -> ConfigurationError:
    """Restate a validation error of ``from_env`` in terms of the variables that caused it.

    Each variable was parsed within its own field's range already, so what is left is a field
    the policy's own checks refuse, or a conflict between two fields, which may be two
    variables or one variable and the base policy.
    """
    field = error.parameter or ""
    fields, rule = _CONFLICTS.get(field, ((field,), str(error)))
    involved = [raw_values[f] for f in fields if f in raw_values] or list(raw_values.values())
    settings = ", ".join(f"{variable}={raw!r}" for variable, raw in involved)
    from_base = [f"{f}={getattr(base, f)!r}" for f in fields if f not in raw_values]
    if len(fields) == 1:
        message = f"{settings}: {rule}"
    elif from_base:
        message = f"{settings} conflicts with the base policy's {', '.join(from_base)}: {rule}"
    else:
        message = f"{settings} conflict: {rule}"
    variables = ", ".join(variable for variable, _ in involved)
    value = involved[0][1] if len(involved) == 1 else dict(involved)
    return ConfigurationError(message, parameter=variables, value=value)


# Checks between fields, by the field whose check reports them: the fields involved, the rule.
_CONFLICTS: Final[Mapping[str, tuple[tuple[str, ...], str]]] = {
    "max_wait": (("min_wait", "max_wait"), "min_wait must be <= max_wait"),
}

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

REDIS: Final = RetryPolicy(
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
)
"""Redis connection errors and timeouts: 3 attempts, waits 1 s then 2 s (exponential,
0.5..2 s), then returns None.

This constant holds the defaults. Decorating with it (``@retry(REDIS)``) or with its name
(``@retry("redis")``) applies the ``REDIS_RETRY_*`` environment variables read at that moment;
a bad value raises [`ConfigurationError`][resilience_kit.ConfigurationError] naming the variable
there."""

_REDIS_ENV_PREFIX: Final = "REDIS_RETRY"

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
    if policy is REDIS:
        # Read at decoration, not at import: a bad variable must not break importing the
        # package, and a test's monkeypatch.setenv must reach the functions it decorates.
        policy = RetryPolicy.from_env(_REDIS_ENV_PREFIX, base=REDIS)
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
# Share of the deadline the final attempt is guaranteed: a wait never eats into it, and the
# retries stop once less than this remains (an attempt with no time left is pointless).
_DEADLINE_RESERVE: Final = 0.01
# SQLAlchemy's str() of a statement error appends the statement and its bound parameters, that
# is, the call's arguments: everything from the first of these markers on is dropped.
_SQL_MARKERS: Final = ("\n[SQL: ", "\n[parameters: ")
# Idle tenacity controllers a decorated function keeps: as many as the failed calls that
# usually overlap, without holding on to many after a burst.
_IDLE_CONTROLLERS: Final = 16


class _Redacted:
    """An error's message as a log record's argument: redacted when the record is formatted.

    Redacting costs microseconds, several times the rest of a retry's bookkeeping, and most
    records are never formatted: a ``NullHandler``, a filter or a handler's own level drops
    them. A record formats its arguments with ``str()``, so the work moves there, done once
    however many handlers format it. Only the raw text is kept (cut to what redaction examines,
    never the error with its traceback and the call's frames), and it never leaves unredacted:
    ``repr()`` and pickling give the redacted text too.
    """

    __slots__ = ("_raw", "_text")

    def __init__(self, raw: str) -> None:
        self._raw = raw
        self._text: str | None = None

    def __str__(self) -> str:
        text = self._text
        if text is None:
            # Two threads formatting at once both compute the same text: no lock needed.
            text = self._text = redact(self._raw, max_length=_MESSAGE_LIMIT)
        return text

    def __repr__(self) -> str:
        return repr(str(self))

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return str, (str(self),)


def _error_text(error: BaseException) -> _Redacted:
    """What may be logged of an error's message: redacted, cut, never a statement's parameters."""
    try:
        orig = getattr(error, "orig", None)
        if isinstance(orig, BaseException) and hasattr(error, "statement"):
            # A SQLAlchemy DBAPIError: the driver's error says what went wrong; the wrapper's
            # message only adds the statement and the parameters.
            text = f"({type(orig).__module__}.{type(orig).__qualname__}) {orig}"
        else:
            text = str(error)
    except Exception:
        text = "<unprintable message>"
    text = text[: _MESSAGE_LIMIT + CUT_MARGIN]
    for marker in _SQL_MARKERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return _Redacted(text)


def _hook_failed(policy: RetryPolicy, hook: str, error: Exception, consequence: str) -> None:
    """Log a ``retry_if`` / ``retry_after`` that raised, without a traceback.

    A hook may run while the call's error is being handled (``retry_if`` on a first attempt
    does), so its own error carries the call's error as ``__context__``: a logged traceback
    would print that one unredacted. The hook's
    error type, its redacted message and where it was raised are enough to find the bug.
    """
    with contextlib.suppress(Exception):  # a broken log handler must not break the call
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(error.__traceback__), lookup_lines=False
        )
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        _LOGGER.error(
            "%s of policy %r failed with %s%s: %s; %s",
            hook,
            policy.name,
            type(error).__name__,
            where,
            _error_text(error),
            consequence,
            extra={"retry_policy": policy.name, "error_type": type(error).__name__},
        )


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

    Each failed attempt goes through tenacity's loop step, `tenacity.Retrying.iter()`,
    which asks the retry, stop and wait callbacks and either ends the loop or returns the
    sleep. The loops below drive those steps themselves instead of iterating a ``Retrying``:
    a success ends the call at once, and the step tenacity takes before each attempt (it only
    runs the ``before`` hook, unused here) is skipped, about 1.3 µs per attempt. `plan()`
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
    count_call = retrier.count_call
    takes_over = retrier.takes_over
    monotonic = clock.monotonic
    # Reading the clock costs ~40 ns; only a deadline needs the start time.
    timed = policy.deadline is not None

    if is_async_callable(fn):
        async_fn = cast(Callable[..., Awaitable[Any]], fn)
        async_pause = _pause_async(async_sleep)

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            count_call()
            start = monotonic() if timed else 0.0
            try:
                return await async_fn(*args, **kwargs)
            except Exception as error:
                verdict = takes_over(error)
                if verdict is None:
                    raise
                first = error
            # Outside the except block, so later attempts do not see `first` as the
            # exception being handled (it would become their __context__).
            run = _Run(retrier, first, verdict, start)
            return await _retry_async(run, async_pause, async_fn, args, kwargs)

        return cast(Callable[P, R], _wraps(async_wrapper, fn))

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
            verdict = takes_over(error)
            if verdict is None:
                raise
            first = error
        return _retry_sync(_Run(retrier, first, verdict, start), sync_pause, fn, args, kwargs)

    return cast(Callable[P, R], _wraps(wrapper, fn))


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
