"""The retry policy: a frozen, validated value, and how ``from_env`` reads one."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from resilience_kit import _env
from resilience_kit._validation import (
    check_callable,
    check_choice,
    check_exception_types,
    check_int,
    check_number,
)
from resilience_kit.errors import CircuitOpenError, ConfigurationError

NEVER_RETRIED: Final[tuple[type[BaseException], ...]] = (
    asyncio.CancelledError,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
)
"""Never retried, whatever a policy lists (trio's ``Cancelled`` neither: see _is_cancellation)."""


def _is_cancellation(cls: type[BaseException]) -> bool:
    """Whether ``cls`` is another async library's cancellation (trio's, which anyio uses too).

    Recognised by name, so that trio need not be imported (or installed).
    """
    return any(
        base.__name__ == "Cancelled" and base.__module__.partition(".")[0] == "trio"
        for base in cls.__mro__
    )


def _never_retried(error: BaseException) -> bool:
    """Whether ``error`` is never retried: one of `NEVER_RETRIED`, a trio cancellation, or a
    ``BaseExceptionGroup`` (a task group's report) holding one of those at any depth.

    Groups are recognised by class name, so that the ``exceptiongroup`` backport's count on
    Python 3.10.
    """
    if isinstance(error, NEVER_RETRIED) or _is_cancellation(type(error)):
        return True
    members = getattr(error, "exceptions", None)
    return (
        isinstance(members, tuple)
        and any(base.__name__ == "BaseExceptionGroup" for base in type(error).__mro__)
        and any(isinstance(m, BaseException) and _never_retried(m) for m in members)
    )


WaitKind = Literal["exponential", "fixed", "random_exponential"]
OnExhausted = Literal["raise", "return_default"]
_WAIT_KINDS: Final = ("exponential", "fixed", "random_exponential")
_ON_EXHAUSTED: Final = ("raise", "return_default")


# --- the policy ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How to retry a call: a frozen, validated value shared by any number of functions.

    An error raised by the call is looked up in this order:

    1. Cancellation (`asyncio.CancelledError`, trio's `Cancelled`), `KeyboardInterrupt`,
       `SystemExit` and `GeneratorExit` propagate at once, whatever the policy lists; so does
       a `BaseExceptionGroup` holding one of them.
    2. `give_up_on` (which always contains [CircuitOpenError][resilience_kit.CircuitOpenError]):
       the policy stops at once and `on_exhausted` decides the outcome.
    3. `retry_on` or `retry_if`: retried until `attempts` or `deadline` run out, then
       `on_exhausted` decides.
    4. Anything else propagates untouched after the attempt that raised it.

    A result the call returns is retried when `retry_if_result` says so; when no attempt or
    time is left, the last result is returned (whatever `on_exhausted` says: that is about
    errors).

    Attributes:
        attempts: Total attempts, the first included (>= 1).
        wait: `"exponential"` waits `multiplier * 2 ** (n - 1)` seconds after attempt
            `n`, clamped to `[min_wait, max_wait]` (tenacity's `wait_exponential`);
            `"fixed"` waits `min_wait`; `"random_exponential"` waits a uniform random
            time up to the exponential value ("full jitter").
        min_wait: Shortest wait in seconds (>= 0).
        max_wait: Longest wait in seconds (>= `min_wait`); caps jitter and `Retry-After`.
        multiplier: Scale of the exponential waits (> 0).
        jitter: Up to this many seconds of uniform random time added to each wait (>= 0).
        deadline: Total seconds for all attempts and waits (> 0), or None. The final attempt
            is guaranteed 1% of it: no wait ends later than 99% of the deadline (the last one
            is shortened to end there, and the attempt after it is the last), and the retries
            stop once less than 1% is left.
        retry_on: Exception classes to retry: any `BaseException` subclasses (a library's own
            `BaseException` timeout, say), except the never-retried ones of step 1, which are
            refused here.
        give_up_on: Exception classes never retried, even if `retry_on` matches them.
        on_exhausted: `"raise"` re-raises the last attempt's exception unchanged;
            `"return_default"` returns `default` instead.
        default: What `"return_default"` returns.
        log_level: Level of the log record written before each wait.
        name: Key of this policy's figures in [retry_stats][resilience_kit.retry_stats], and
            shown in logs.
        retry_if: Also retry an error for which this returns True (for errors recognised by
            their attributes rather than their class).
        retry_after: Reads a server-requested delay: called with the error (or, for a retry
            `retry_if_result` asked for, the result) and the current wall-clock time, returns
            seconds or None. The wait is at least that long, still capped by `max_wait` and
            `deadline`. An answer that is not a finite real number >= 0, or an exception, is
            logged and ignored.
        retry_if_result: Retry when this returns True for the call's result (an HTTP response
            with status 429 or 503 that was not raised, say:
            [retryable_http_response][resilience_kit.retry.retryable_http_response]). If it
            raises, that is logged and the result is returned.
        on_retry: Called before each wait with a
            [RetryEvent][resilience_kit.RetryEvent] (tenacity's `before_sleep`): for
            metrics, tracing, or a log of your own. May be a coroutine function for an
            `async def`. If it raises, that is logged and the call goes on.
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
    retry_after: Callable[[Any, float], float | None] | None = None
    retry_if_result: Callable[[Any], bool] | None = None
    on_retry: Callable[[RetryEvent], object] | None = None

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
            if issubclass(cls, NEVER_RETRIED) or _is_cancellation(cls):
                raise ConfigurationError(
                    f"retry_on lists {cls.__qualname__}, which is never retried (cancellation, "
                    "KeyboardInterrupt, SystemExit and GeneratorExit always propagate), got "
                    f"{self.retry_on!r}",
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
        check_callable("retry_if_result", self.retry_if_result)
        check_callable("on_retry", self.on_retry)

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
        ``_RETRY_IF``, ``_RETRY_AFTER``, ``_RETRY_IF_RESULT`` and ``_ON_RETRY`` (import paths of
        callables). Unset or blank
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


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryEvent:
    """What a policy's `on_retry` hook is told before each wait.

    Attributes:
        policy: The [RetryPolicy][resilience_kit.RetryPolicy] retrying.
        attempt: The attempt that just failed, counting from 1.
        wait: Seconds the call now waits before the next attempt (the wait that
            [no_waits][resilience_kit.testing.no_waits] skips, too).
        error: The exception that attempt raised, or None if its result was retried.
        result: The result `retry_if_result` retried, or None if the attempt raised.
    """

    policy: RetryPolicy
    attempt: int
    wait: float
    error: BaseException | None
    result: Any = None


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
    "retry_if_result": _parse_callable,
    "on_retry": _parse_callable,
}
