"""The [`CircuitBreaker`][resilience_kit.CircuitBreaker]: call forms, outcome classification,
listeners, stats.

The decisions live in `_machine`; this module adapts calls to it. The sync and async
forms share every step except the ``await``: admission (``_admit``), outcome handling
(``_failed``/``_succeeded``) and rejection (``_rejected``) are plain methods both call.

Hot path: a decorated call reads ``gate.clean`` (one attribute of the state cell). When it is
true (CLOSED, consecutive policy, no failure pending, and this breaker neither times calls nor
inspects results), a success costs one lock-free counter step and a second read of
``gate.clean``: a failure recorded while the call ran makes the success matter (it ends the
run of failures), and the second read sends it to the general path. Every other case takes the
general path, which locks only to change the machine's state.

Listeners of state changes are never called under the lock: a change is queued on the cell
under the lock and delivered after it is released (``_deliver``).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
import reprlib
import types
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from typing_extensions import ParamSpec, Self

from resilience_kit import _validation as check
from resilience_kit._callables import adopt_metadata, generator_kind, is_async_callable
from resilience_kit.breaker import _registry
from resilience_kit.breaker._machine import (
    HALF_OPEN,
    LOCK,
    NORMAL,
    OPEN,
    REJECT,
    CircuitState,
    Machine,
    MachineSettings,
)
from resilience_kit.breaker._windows import FailureRateWindow
from resilience_kit.breaker.storage import BreakerCell, BreakerStorage, MemoryStorage, read_count
from resilience_kit.clock import Clock, default_clock
from resilience_kit.errors import CircuitOpenError, ConfigurationError

__all__ = [
    "BreakerListener",
    "BreakerStats",
    "CircuitBreaker",
    "add_global_listener",
    "remove_global_listener",
]

P = ParamSpec("P")
R = TypeVar("R")

_logger = logging.getLogger("resilience_kit.breaker")


class BreakerListener(Protocol):
    """Receives a breaker's events. Every method is optional.

    Subclass this to implement only the methods you need (the others do nothing); any object
    with some of these methods works too. A listener that raises is logged on the
    ``resilience_kit.breaker`` logger and never breaks the call.

    ``on_state_change`` is called after the breaker's lock is released, so a slow listener
    never holds up other threads using the breaker. One breaker's transitions reach its
    listeners one at a time, in the order they happened: usually from the thread that caused
    the transition before its call returns, but from another thread if that one is busy
    delivering an earlier transition. By then the breaker may have moved on: ``new`` is the
    state it entered then, not necessarily its state now.
    """

    def on_state_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState
    ) -> None:
        """The breaker moved from ``old`` to ``new``.

        Declare a keyword parameter ``cause: str = ""`` to be told, in words, what caused it
        (``"failure: ConnectionError('refused') (5/5 in a row)"``, ``"recovery timeout elapsed
        (30s)"``, ``"trial succeeded (2/2)"``, ``"reset()"``...). The text is made only when a
        transition happens, and only if some listener asks for it.
        """

    def on_success(self, breaker: CircuitBreaker, duration: float) -> None:
        """A call succeeded after ``duration`` seconds (by the breaker's clock)."""

    def on_failure(
        self, breaker: CircuitBreaker, error: BaseException | None, duration: float
    ) -> None:
        """A call counted as a failure; ``error`` is ``None`` when it returned a value that
        counts as one (``failure_if``, or slower than ``slow_call_threshold``)."""

    def on_rejected(self, breaker: CircuitBreaker) -> None:
        """A call was rejected without running."""


# (listener, its on_state_change, whether that takes ``cause``), in the order they were added.
_global_listeners: list[tuple[Any, Callable[..., object], bool]] = []


def add_global_listener(listener: Any) -> None:
    """Call ``listener.on_state_change(breaker, old, new)`` on every breaker's transitions.

    As for a [`BreakerListener`][resilience_kit.BreakerListener], the method also gets ``cause=``
    (what caused the transition, in words) if it declares a parameter of that name. This is the
    process-wide hook the test recorder uses; it costs nothing until a breaker changes state.
    """
    method = listener.on_state_change
    _global_listeners.append((listener, method, _accepts(method, "cause")))


def remove_global_listener(listener: Any) -> None:
    """Undo [`add_global_listener()`][resilience_kit.breaker.add_global_listener] (nothing happens
    if ``listener`` was not added)."""
    for entry in _global_listeners:
        if entry[0] is listener:
            _global_listeners.remove(entry)
            return


def use_clock_everywhere(clock: Clock, *, then: Clock | None = None) -> Callable[[], None]:
    """Run every live breaker on ``clock``; return the function that puts their clocks back.

    For tests (the pytest plugin's ``fake_clock``): breakers created at import time keep the
    clock they were created with, and this reaches them. Breakers whose state is kept in
    another process (a remote storage) are left alone: their times are not only theirs.

    The undo gives each breaker switched here its own clock back. With ``then``, it also moves
    every other live breaker still on ``clock`` (those created while it was in use) to
    ``then``: ``clock`` stops being the process's time when the test ends, and a breaker
    that outlives the test, such as a module-level one first imported inside it, must not
    stay frozen on it. Without ``then`` those are left on ``clock``. Either way a local
    breaker's times are rebased, so what is left of its timeouts carries over.
    """
    switched: list[tuple[CircuitBreaker, Clock]] = []
    rebased: set[int] = set()
    for breaker in _registry.every_breaker():
        cell = breaker._cell
        if cell.remote:
            continue
        first = id(cell) not in rebased
        rebased.add(id(cell))
        switched.append((breaker, breaker._use_clock(clock, rebase=first)))

    def restore() -> None:
        done: set[int] = set()
        for breaker, previous in switched:
            first = id(breaker._cell) not in done
            done.add(id(breaker._cell))
            breaker._use_clock(previous, rebase=first)
        if then is None:
            return
        restored = {id(breaker) for breaker, _ in switched}
        for breaker in _registry.every_breaker():
            if breaker._clock is clock and id(breaker) not in restored:
                cell = breaker._cell
                first = id(cell) not in done
                done.add(id(cell))
                breaker._use_clock(then, rebase=first and not cell.remote)

    return restore


def _notify(callbacks: Iterable[Callable[..., object]], event: str, *args: object) -> None:
    for callback in callbacks:
        try:
            callback(*args)
        except Exception:
            _logger.exception("breaker listener %r failed in %s", callback, event)


_EVENTS = ("on_state_change", "on_success", "on_failure", "on_rejected")


def _check_listeners(value: Any) -> tuple[Any, ...]:
    allowed = "an iterable of listeners (objects with some of " + ", ".join(_EVENTS) + ")"
    try:
        listeners = tuple(value)
    except TypeError:
        raise check._fail("listeners", value, allowed) from None
    for listener in listeners:
        if not any(callable(getattr(listener, event, None)) for event in _EVENTS):
            raise check._fail("listeners", value, allowed)
    return listeners


def _hooks(listeners: tuple[Any, ...], event: str) -> tuple[Callable[..., object], ...]:
    """The listeners' methods for ``event``, leaving out the no-op defaults."""
    default = getattr(BreakerListener, event)
    found = []
    for listener in listeners:
        method = getattr(listener, event, None)
        if method is not None and getattr(method, "__func__", None) is not default:
            found.append(method)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """A snapshot of one breaker, as [`CircuitBreaker.stats()`][resilience_kit.CircuitBreaker.stats]
    returns it.

    Attributes:
        name: The breaker's name.
        state: Its state when the snapshot was taken.
        failure_count: Failures the policy holds now: consecutive failures, or failures in the
            rate window when ``failure_rate`` is set.
        consecutive_successes: Successful calls since the last recorded failure (or reset).
        total_calls: Calls that finished or were rejected (a call in progress is not counted
            yet): successes + failures + rejected + calls whose error was not counted.
        total_successes: Calls that counted as successes.
        total_failures: Calls that counted as failures.
        total_rejected: Calls rejected without running (shown as ``total_blocked`` by
            [`CircuitBreaker.to_dict()`][resilience_kit.CircuitBreaker.to_dict]).
        failure_rate: The share of failures in the rate window (rate policy), or among all
            recorded outcomes (consecutive policy); 0.0 before any.
        success_rate: ``total_successes / (total_successes + total_failures)``; 1.0 before any.
        opened_at: Wall-clock time (epoch seconds) it last opened, or ``None``.
        retry_after: Seconds until it admits a trial call (0.0 unless OPEN).
        last_failure: Wall-clock time of the last recorded failure, or ``None``.
    """

    name: str
    state: CircuitState
    failure_count: int
    consecutive_successes: int
    total_calls: int
    total_successes: int
    total_failures: int
    total_rejected: int
    failure_rate: float
    success_rate: float
    opened_at: float | None
    retry_after: float
    last_failure: float | None


class _AlwaysSlow:
    """The gate of a breaker that times calls or inspects results: never the bare fast path."""

    __slots__ = ()
    clean = False


_ALWAYS_SLOW = _AlwaysSlow()


class _Pass:
    """The doorman of a breaker whose state lives elsewhere: every call goes to the slow path,
    which synchronises before deciding."""

    __slots__ = ()
    reject_until = -math.inf
    state = CircuitState.CLOSED


_PASS = _Pass()
_INF = math.inf
_COROUTINE = types.CoroutineType
# Builds a rejection without CircuitOpenError's Python-level __init__ (see errors.py).
_new_error = BaseException.__new__


async def _resolve(answer: Any) -> Any:
    """A fallback's answer, awaited if it is awaitable (an async fallback)."""
    return await answer if inspect.isawaitable(answer) else answer


_NO_RESULT = object()

# What just happened to the machine, passed to ``_settle`` so that a transition can be explained;
# the words are made from it (and its detail) only when there is a transition to explain.
_TIME = 0  # time passed (a poll); no detail
_SUCCESS = 1  # a recorded success; no detail
_ERROR = 2  # a recorded failure; detail: the exception
_SLOW = 3  # a call slower than slow_call_threshold; detail: its duration
_FLAGGED = 4  # a result failure_if flagged; detail: the result
_MANUAL = 5  # a manual control; detail: its description

# Errors and results in a cause: whole for the usual short ones, cut down for a huge payload.
_short = reprlib.Repr()
_short.maxother = _short.maxstring = 120

# The admissions of ``with breaker:`` blocks in progress, innermost last, per thread and task.
_entered: contextvars.ContextVar[tuple[tuple[CircuitBreaker, int, float], ...]] = (
    contextvars.ContextVar("resilience_kit_breaker_entered", default=())
)
# The process-wide storage of CircuitBreaker.shared() when no storage is given.
_SHARED_MEMORY = MemoryStorage()


def _accepts(fn: Callable[..., Any] | None, keyword: str) -> bool:
    """Whether ``fn`` declares a parameter called ``keyword`` that can be passed by name."""
    if fn is None:
        return False
    try:
        parameter = inspect.signature(fn).parameters.get(keyword)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


class _Change(NamedTuple):
    """A transition waiting in a cell's outbox, with the facts its cause is told from."""

    old: CircuitState
    new: CircuitState
    kind: int  # one of _TIME... below
    detail: Any
    timeout: float  # the recovery timeout then
    judged: tuple[int, int] | None  # (failures, calls) in the rate window then, if any


def _answer(
    fallback: Callable[..., Any],
    passes_error: bool,
    error: BaseException,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``fallback``'s answer for a call made with ``args`` and ``kwargs`` that ended in ``error``.

    The exception goes in as ``error=`` when the fallback declares that parameter, unless the
    call passed an ``error`` keyword of its own: the fallback gets the call's arguments as they
    were, and a call's own argument is never overwritten.
    """
    if passes_error and "error" not in kwargs:
        return fallback(*args, **kwargs, error=error)
    return fallback(*args, **kwargs)


class CircuitBreaker:
    """Stops calling a failing dependency for a while, then lets a few trial calls test it.

    CLOSED counts failures; enough of them (``failure_threshold`` in a row, or a
    ``failure_rate`` over ``window``) open it. OPEN rejects calls with
    [`CircuitOpenError`][resilience_kit.CircuitOpenError] (or answers with ``fallback``) for
    ``recovery_timeout`` seconds, then HALF_OPEN admits ``half_open_max_calls`` trial calls at
    a time: ``success_threshold`` successes close it, one failure re-opens it (for twice as
    long, up to ``max_recovery_timeout``, when that is set).

    Args:
        name: Unique among live breakers in the process; shown in errors, stats and metrics.
        failure_threshold: Consecutive recorded failures that open it (>= 1).
        failure_rate: If set (0 < r <= 1), open when the share of failures in the last
            ``window`` seconds reaches it, judged after every recorded outcome once
            ``minimum_calls`` are in the window; replaces ``failure_threshold``.
        window: Seconds the rate window covers (> 0).
        minimum_calls: Outcomes in the window before the rate is judged (>= 1).
        recovery_timeout: Seconds OPEN before trial calls are admitted (> 0).
        max_recovery_timeout: If set (>= ``recovery_timeout``), each failed trial doubles the
            timeout, up to this; closing restores ``recovery_timeout``.
        half_open_max_calls: Trial calls running at once in HALF_OPEN (>= 1).
        success_threshold: Successful trials that close it (>= 1).
        slow_call_threshold: If set (> 0), a call taking longer (by the breaker's clock) counts
            as a failure; its result is still returned.
        failure_on: Exception types that count as failures.
        ignore: Exception types that pass through uncounted (wins over ``failure_on``).
        failure_if: A predicate on the result; a result it flags counts as a failure and is
            still returned.
        fallback: Called with the call's arguments when a call is rejected or raises a
            recorded failure, and its value returned instead; it also gets the exception as
            ``error=`` if it declares a parameter of that name.
        storage: Where the state lives; a private [`MemoryStorage`][resilience_kit.MemoryStorage] by
            default.
        clock: The clock for timeouts and durations; ``default_clock()`` at construction.
        listeners: [`BreakerListener`][resilience_kit.BreakerListener] objects.

    Raises:
        ConfigurationError: A parameter is outside its range, or ``name`` is taken.

    Examples:
        ```python
        from resilience_kit import CircuitBreaker

        redis_guard = CircuitBreaker(
            "redis-doc",
            failure_threshold=3,
            recovery_timeout=30,
            fallback=lambda *a, **k: None,
        )


        @redis_guard
        def get(key: str) -> str | None:
            raise ConnectionError("redis is down")


        assert all(get("k") is None for _ in range(4))  # three failures, then rejected
        assert str(redis_guard.state) == "OPEN"
        redis_guard.unregister()
        ```
    """

    __slots__ = (
        "__weakref__",
        "_accepts_error",
        "_cell",
        "_clock",
        "_ends_timed",
        "_failure_if",
        "_failure_on",
        "_fallback",
        "_gate",
        "_ignore",
        "_lock",
        "_machine",
        "_monotonic",
        "_on_change",
        "_on_failure",
        "_on_rejected",
        "_on_success",
        "_slow",
        "_timed",
        "_wrappers",
        "name",
        "storage",
    )

    name: str
    storage: BreakerStorage
    _cell: BreakerCell
    _machine: Machine

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window: float = 60.0,
        minimum_calls: int = 10,
        recovery_timeout: float = 60.0,
        max_recovery_timeout: float | None = None,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        slow_call_threshold: float | None = None,
        failure_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        ignore: tuple[type[BaseException], ...] = (),
        failure_if: Callable[[Any], bool] | None = None,
        fallback: Callable[..., Any] | None = None,
        storage: BreakerStorage | None = None,
        clock: Clock | None = None,
        listeners: Iterable[BreakerListener] = (),
    ) -> None:
        self._setup(name, locals(), shared=None)

    @classmethod
    def shared(
        cls, name: str, *, storage: BreakerStorage | None = None, **config: Any
    ) -> CircuitBreaker:
        """A breaker that shares its circuit with every other ``shared`` breaker of that name.

        Breakers created this way with one ``storage`` (a process-wide
        [`MemoryStorage`][resilience_kit.MemoryStorage] when none is given) see one state and one
        set of totals, while each keeps its own ``fallback``, listeners and error classification.
        Their state settings must match.

        Args:
            name: The circuit's name.
            storage: The storage they share.
            **config: The [`CircuitBreaker`][resilience_kit.CircuitBreaker] keyword arguments.

        Raises:
            ConfigurationError: ``name`` is used by a breaker that is not shared through
                ``storage``, or the settings differ from the live ones.
        """
        store = _SHARED_MEMORY if storage is None else storage
        breaker = cls.__new__(cls)
        defaults = inspect.signature(cls.__init__).parameters
        options = {key: p.default for key, p in defaults.items() if key not in ("self", "name")}
        unknown = set(config) - set(options)
        if unknown:
            raise TypeError(f"CircuitBreaker.shared() got unexpected arguments {sorted(unknown)}")
        options.update(config, storage=store)
        breaker._setup(name, options, shared=store)
        return breaker

    def _setup(self, name: str, options: dict[str, Any], shared: BreakerStorage | None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"name must be a non-empty str, got {name!r}", parameter="name", value=name
            )
        rate = options["failure_rate"]
        recovery = check.check_number(
            "recovery_timeout", options["recovery_timeout"], minimum=0, min_inclusive=False
        )
        ceiling = options["max_recovery_timeout"]
        settings = MachineSettings(
            failure_threshold=check.check_int(
                "failure_threshold", options["failure_threshold"], minimum=1
            ),
            failure_rate=None
            if rate is None
            else check.check_number(
                "failure_rate", rate, minimum=0, min_inclusive=False, maximum=1
            ),
            window=check.check_number("window", options["window"], minimum=0, min_inclusive=False),
            minimum_calls=check.check_int("minimum_calls", options["minimum_calls"], minimum=1),
            recovery_timeout=recovery,
            max_recovery_timeout=None
            if ceiling is None
            else check.check_number("max_recovery_timeout", ceiling, minimum=recovery),
            half_open_max_calls=check.check_int(
                "half_open_max_calls", options["half_open_max_calls"], minimum=1
            ),
            success_threshold=check.check_int(
                "success_threshold", options["success_threshold"], minimum=1
            ),
        )
        slow = options["slow_call_threshold"]
        self._slow = (
            None
            if slow is None
            else check.check_number("slow_call_threshold", slow, minimum=0, min_inclusive=False)
        )
        self._failure_on = check.check_exception_types("failure_on", options["failure_on"])
        if not all(issubclass(kind, Exception) for kind in self._failure_on):
            # Never counted (they are not errors), so listing one would only mislead.
            raise check._fail(
                "failure_on",
                options["failure_on"],
                "subclasses of Exception (KeyboardInterrupt, SystemExit and CancelledError "
                "never count as failures)",
            )
        self._ignore = check.check_exception_types("ignore", options["ignore"])
        self._failure_if = check.check_callable("failure_if", options["failure_if"])
        self._fallback = check.check_callable("fallback", options["fallback"])
        self._accepts_error = _accepts(self._fallback, "error")
        storage = options["storage"]
        if storage is None:
            storage = MemoryStorage()
        elif not isinstance(storage, BreakerStorage):
            raise ConfigurationError(
                f"storage must be a BreakerStorage or None, got {storage!r}",
                parameter="storage",
                value=storage,
            )
        clock = options["clock"]
        if clock is None:
            clock = default_clock()
        elif not isinstance(clock, Clock):
            raise ConfigurationError(
                f"clock must be a Clock (monotonic() and wall()) or None, got {clock!r}",
                parameter="clock",
                value=clock,
            )
        listeners = _check_listeners(options["listeners"])
        self._on_change = tuple(
            (hook, _accepts(hook, "cause")) for hook in _hooks(listeners, "on_state_change")
        )
        self._on_success = _hooks(listeners, "on_success")
        self._on_failure = _hooks(listeners, "on_failure")
        self._on_rejected = _hooks(listeners, "on_rejected")
        self._timed = bool(self._slow is not None or self._on_success or self._on_failure)

        self.name = name
        self.storage = storage
        self._clock = clock
        self._monotonic = clock.monotonic
        self._cell = storage.cell(name, settings)
        self._machine = self._cell.machine
        self._lock = self._cell.lock
        plain = not self._timed and self._failure_if is None
        self._gate = self._cell if plain else _ALWAYS_SLOW
        # Reading the clock again when a call ends is needed only to time it, or to place its
        # outcome in the rate window; a failure always reads it (opened_at, last_failure).
        self._ends_timed = self._timed or settings.failure_rate is not None
        self._wrappers: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()
        _registry.register(self, shared)

    # -- decorator and call forms -------------------------------------------------------------

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Guard ``fn`` (a def or an async def, a function or a method) with this breaker.

        Async callables are recognised as such when ``fn`` is an ``async def``, a
        `functools.partial()` of one, or an object whose class has ``async def __call__``;
        the wrapper is then an ``async def``. It keeps ``fn``'s signature and metadata
        (``functools.wraps``; a partial or a callable object lends its function's or its
        class's name).

        Raises:
            ConfigurationError: ``fn`` is not callable; or it is a generator function (calling
                it only creates the generator, so the breaker would count a success before
                any of its code ran and never see its errors); or ``fallback`` takes ``error``
                and so does ``fn`` (the fallback could not tell the call's own ``error`` from
                the exception).
        """
        if isinstance(fn, (staticmethod, classmethod)):
            return type(fn)(self(fn.__func__))
        if not callable(fn):
            raise ConfigurationError(f"fn must be callable, got {fn!r}", parameter="fn", value=fn)
        kind = generator_kind(fn)
        if kind is not None:
            raise ConfigurationError(
                f"a circuit breaker cannot guard the {kind} {fn!r}: calling it only creates "
                "the generator, so the breaker would count a success before any of its code "
                "ran and never see its errors; guard the calls it makes, or use `with "
                "breaker:` (`async with`) around the part that talks to the dependency",
                parameter="fn",
                value=fn,
            )
        if self._accepts_error and _accepts(fn, "error"):
            raise ConfigurationError(
                f"fallback {self._fallback!r} of breaker {self.name!r} takes `error`, and so "
                f"does {fn!r}: the fallback gets the call's own arguments, so it could not "
                "tell the call's `error` from the exception; rename the parameter of one of "
                "them, or give this function a fallback without `error`",
                parameter="fallback",
                value=self._fallback,
            )
        if is_async_callable(fn):
            return cast("Callable[P, R]", self._wrap_async(cast("Any", fn)))
        return self._wrap_sync(fn)

    def _hot_parts(self) -> tuple[Any, ...]:
        """What the decorators' hot paths touch, to be bound to locals of their closures.

        Closure cells are the cheapest lookups a wrapper can make; ``_use_clock`` finds the
        clock's cell by its name, ``monotonic``.
        """
        return (
            self._gate,
            _PASS if self._cell.remote else self._machine,
            self._monotonic,
            self._cell.successes,
            self._failed,
            self._use_fallback,
            self._reject,
            self._cell.rejected,
            self._fallback is None and not self._on_rejected,
            self.name,
            self._late_success,
        )

    def _wrap_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        (
            gate,
            doorman,
            monotonic,
            successes,
            failed,
            use_fallback,
            reject,
            rejected,
            quiet,
            name,
            late,
        ) = self._hot_parts()
        new_error, open_error = _new_error, CircuitOpenError
        general = self._call
        coroutine = _COROUTINE

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if gate.clean:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    if failed(error, NORMAL, 0.0):
                        return use_fallback(error, args, kwargs)  # type: ignore[no-any-return]
                    raise
                if type(result) is not coroutine:
                    next(successes)
                    # Still clean: no failure was recorded while fn ran, so this success
                    # has nothing to reset. Otherwise it must end the run of failures.
                    if gate.clean:
                        return result
                return late(fn, result)  # type: ignore[no-any-return]
            now = monotonic()
            until = doorman.reject_until
            if now < until:
                if quiet:
                    # Raised here, not in a helper: each frame an exception unwinds through
                    # costs about as much as the rest of the rejection. retry_after is
                    # Machine.retry_after, inlined for the same reason.
                    next(rejected)
                    raise new_error(
                        open_error,
                        name,
                        until - now if until < _INF else 0.0,
                        doorman.state,
                    )
                return reject(now, args, kwargs)  # type: ignore[no-any-return]
            return general(fn, args, kwargs, now)

        adopt_metadata(guarded, fn)
        self._wrappers.add(guarded)
        return guarded

    def _wrap_async(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        (
            gate,
            doorman,
            monotonic,
            successes,
            failed,
            use_fallback,
            reject,
            rejected,
            quiet,
            name,
            late,
        ) = self._hot_parts()
        new_error, open_error = _new_error, CircuitOpenError
        general = self._call_async

        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if gate.clean:
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    if failed(error, NORMAL, 0.0):
                        return await _resolve(use_fallback(error, args, kwargs))  # type: ignore[no-any-return]
                    raise
                next(successes)
                if gate.clean:  # as in the sync wrapper
                    return result
                return late(None, result)  # type: ignore[no-any-return]
            now = monotonic()
            until = doorman.reject_until
            if now < until:
                if quiet:
                    next(rejected)
                    raise new_error(
                        open_error,
                        name,
                        until - now if until < _INF else 0.0,
                        doorman.state,
                    )
                return await _resolve(reject(now, args, kwargs))  # type: ignore[no-any-return]
            return await general(fn, args, kwargs, now)

        adopt_metadata(guarded, fn)
        self._wrappers.add(guarded)
        return guarded

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: The breaker rejected the call and there is no ``fallback``.
        """
        return self._call(fn, args, kwargs, self._monotonic())

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: The breaker rejected the call and there is no ``fallback``.
        """
        return await self._call_async(fn, args, kwargs, self._monotonic())

    def _call(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        now: float,
        *,
        own_fallback: bool = True,
    ) -> R:
        # own_fallback=False: raise instead of answering with ``fallback``, for resilient(),
        # which retries the failure first and falls back only on the final outcome.
        cell = self._cell
        if cell.remote:
            cell.pull(now)
        ticket = self._admit(now)
        if ticket == REJECT:
            if not own_fallback:
                raise self._rejection(now)
            return self._reject(now, args, kwargs)  # type: ignore[no-any-return]
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            use_fallback = self._failed(error, ticket, now) and own_fallback
            if cell.remote:
                cell.push(self._monotonic())
            if use_fallback:
                return self._use_fallback(error, args, kwargs)  # type: ignore[no-any-return]
            raise
        if type(result) is _COROUTINE:
            self._not_awaited(fn, result, ticket)
        self._succeeded(result, ticket, now)
        if cell.remote:
            cell.push(self._monotonic())
        return result

    async def _call_async(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        now: float,
        *,
        own_fallback: bool = True,
    ) -> R:
        cell = self._cell
        if cell.remote:
            await cell.pull_async(now)
        ticket = self._admit(now)
        if ticket == REJECT:
            if not own_fallback:
                raise self._rejection(now)
            return await _resolve(self._reject(now, args, kwargs))  # type: ignore[no-any-return]
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            use_fallback = self._failed(error, ticket, now) and own_fallback
            if cell.remote:
                await cell.push_async(self._monotonic())
            if use_fallback:
                return await _resolve(self._use_fallback(error, args, kwargs))  # type: ignore[no-any-return]
            raise
        self._succeeded(result, ticket, now)
        if cell.remote:
            await cell.push_async(self._monotonic())
        return result

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Admit the block as one call (raises [`CircuitOpenError`][resilience_kit.CircuitOpenError]
        when rejected).

        ``fallback`` does not apply to blocks: there is no return value to replace.
        """
        now = self._monotonic()
        if self._cell.remote:
            self._cell.pull(now)
        self._enter(now)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Record the block's outcome; an exception always propagates."""
        self._exit(error)
        if self._cell.remote:
            self._cell.push(self._monotonic())

    async def __aenter__(self) -> Self:
        """``async with breaker:``: as ``with``."""
        now = self._monotonic()
        if self._cell.remote:
            await self._cell.pull_async(now)
        self._enter(now)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Record the block's outcome; an exception always propagates."""
        self._exit(error)
        if self._cell.remote:
            await self._cell.push_async(self._monotonic())

    def _enter(self, now: float) -> None:
        ticket = self._admit(now)
        if ticket == REJECT:
            raise self._rejection(now)
        _entered.set((*_entered.get(), (self, ticket, now)))

    def _exit(self, error: BaseException | None) -> None:
        stack = _entered.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                _, ticket, started = stack[index]
                _entered.set(stack[:index] + stack[index + 1 :])
                break
        else:  # __exit__ without __enter__ in this thread or task: nothing to record
            return
        if error is None:
            self._succeeded(_NO_RESULT, ticket, started)
        else:
            self._failed(error, ticket, started)

    # -- the steps both forms share -------------------------------------------------------------

    def _admit(self, now: float) -> int:
        machine = self._machine
        ticket = machine.peek(now)
        if ticket == LOCK:
            with self._lock:
                old = machine.state
                ticket = machine.admit(now)
                self._settle(old, _TIME)
            if self._cell.outbox:
                self._deliver()
        return ticket

    def _settle(self, old: CircuitState, kind: int, detail: Any = None) -> None:
        """After a change to the machine, under the lock: refresh the gate, queue a transition.

        ``kind`` (one of the ``_TIME``... constants) and ``detail`` say what changed it. The
        transition is delivered by `_deliver()` once the lock is released; the facts its
        cause is told from are taken now, while they are still true.
        """
        machine = self._machine
        cell = self._cell
        # A cell kept elsewhere must see every outcome, so it never takes the fast path.
        cell.clean = machine.clean and not cell.remote
        new = machine.state
        if new is not old and (self._on_change or _global_listeners):
            policy = machine.policy
            judged = (
                (policy.total_failed, policy.total) if type(policy) is FailureRateWindow else None
            )
            cell.outbox.append((self, _Change(old, new, kind, detail, machine.timeout, judged)))

    def _deliver(self) -> None:
        """Tell listeners the queued transitions, unless another thread is already at it.

        Call it after releasing the lock. Deliveries of one state run one at a time and in
        order: a thread that finds another delivering leaves its transitions to that one,
        which goes on until the queue is empty. The flag and the queue are read together
        under the lock, so no transition is left behind.
        """
        cell = self._cell
        lock = self._lock
        outbox = cell.outbox
        while True:
            with lock:
                if cell.delivering or not outbox:
                    return
                breaker, change = outbox.popleft()
                cell.delivering = True
            try:
                breaker._announce(change)
            finally:
                # Even if a listener raised SystemExit: later transitions must not wait forever.
                cell.delivering = False

    def _announce(self, change: _Change) -> None:
        old, new = change.old, change.new
        cause: str | None = None
        hooks = [*self._on_change, *((hook, wants) for _, hook, wants in tuple(_global_listeners))]
        for hook, wants_cause in hooks:
            try:
                if wants_cause:
                    if cause is None:
                        cause = self._cause(change)
                    hook(self, old, new, cause=cause)
                else:
                    hook(self, old, new)
            except Exception:
                _logger.exception("breaker listener %r failed in on_state_change", hook)

    def _cause(self, change: _Change) -> str:
        """What made the machine make ``change``, in words (never raises)."""
        try:
            return self._describe(change)
        except Exception:  # a user's __repr__ that fails must not hide the transition
            return f"{change.old} -> {change.new}"

    def _describe(self, change: _Change) -> str:
        old, new, kind, detail, timeout, judged = change
        settings = self._machine.settings
        if kind == _MANUAL:
            return str(detail)
        if new is HALF_OPEN and old is OPEN:
            return f"recovery timeout elapsed ({timeout:g}s)"
        if old is HALF_OPEN and new is not OPEN:
            threshold = settings.success_threshold
            return f"trial succeeded ({threshold}/{threshold})"
        if kind == _ERROR:
            what = _short.repr(detail)
        elif kind == _SLOW:
            what = f"slow call {detail:.3g}s > {self._slow:g}s"
        elif kind == _FLAGGED:
            what = f"failure_if result {_short.repr(detail)}"
        elif kind == _SUCCESS:
            what = "a success"
        else:
            return f"{old} -> {new}"
        if old is HALF_OPEN:
            return f"trial failed: {what}"
        if kind == _ERROR:
            what = f"failure: {what}"
        rate = settings.failure_rate
        if rate is None or judged is None:
            return f"{what} ({settings.failure_threshold}/{settings.failure_threshold} in a row)"
        failed, total = judged
        verdict = f"failure rate {failed / total:.0%} >= {rate:.0%} over {total} calls"
        return f"{verdict} after {what}" if kind == _SUCCESS else f"{what} ({verdict})"

    def _rejection(self, now: float) -> CircuitOpenError:
        """Count and report a rejected call; the error to raise or to give ``fallback``."""
        next(self._cell.rejected)
        if self._on_rejected:
            _notify(self._on_rejected, "on_rejected", self)
        machine = self._machine
        error: CircuitOpenError = _new_error(
            CircuitOpenError, self.name, machine.retry_after(now), machine.state
        )
        return error

    def _reject(self, now: float, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Turn a call away: the fallback's answer, or raise
        [`CircuitOpenError`][resilience_kit.CircuitOpenError]."""
        error = self._rejection(now)
        if self._fallback is None:
            raise error
        return self._use_fallback(error, args, kwargs)

    def _use_fallback(
        self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        fallback = cast("Callable[..., Any]", self._fallback)
        return _answer(fallback, self._accepts_error, error, args, kwargs)

    def _failed(self, error: BaseException, ticket: int, started: float) -> bool:
        """Handle a call that raised ``error``; True when ``fallback`` should answer it."""
        if (
            isinstance(error, Exception)
            and isinstance(error, self._failure_on)
            and not isinstance(error, self._ignore)
        ):
            now = self._monotonic()
            self._record_failure(ticket, now, now - started, _ERROR, error)
            return self._fallback is not None
        # Not an outcome that counts (ignored, unlisted, or KeyboardInterrupt and friends): the
        # trial slot, if it held one, goes back, or HALF_OPEN would wait for it forever.
        self._unrecorded(ticket)
        return False

    def _unrecorded(self, ticket: int) -> None:
        """A call ended without an outcome that counts: total it, give back its trial slot."""
        next(self._cell.unrecorded)
        if ticket > 0:
            with self._lock:
                self._machine.release(ticket)

    def _not_awaited(self, fn: Callable[..., Any], result: Any, ticket: int) -> None:
        """A call run as a plain function returned a coroutine: nothing ran that can be judged."""
        result.close()  # never awaited: close it, so Python does not warn about it
        self._unrecorded(ticket)
        raise TypeError(
            f"circuit breaker {self.name!r} called {fn!r} as a plain function and got a "
            "coroutine back, so the call has not run yet and has no outcome to count; the "
            "coroutine was closed and nothing was counted. Decorate the async def itself (or "
            "an object with async def __call__), or use `await breaker.call_async(fn, ...)`"
        )

    def _late_success(self, fn: Callable[..., Any] | None, result: Any) -> Any:
        """The end of a fast-path call that the fast path could not settle: a sync ``fn``
        that returned a coroutine, or a success after the gate closed while it ran."""
        if fn is not None and type(result) is _COROUTINE:
            self._not_awaited(fn, result, NORMAL)
        # The gate is the cell only with the consecutive policy, whose successes need no
        # time; reading the clock keeps this right if that ever changes.
        self._record_success(self._monotonic(), NORMAL)
        return result

    def _succeeded(self, result: Any, ticket: int, started: float) -> None:
        # One clock read per call unless the end time matters (see _ends_timed).
        now = self._monotonic() if self._ends_timed else started
        duration = now - started
        slow = self._slow
        if slow is not None and duration > slow:
            self._record_failure(ticket, now, duration, _SLOW, duration)
            return
        if result is not _NO_RESULT and self._failure_if is not None:
            try:
                flagged = self._flags(result)
            except BaseException:
                # KeyboardInterrupt (a signal) or the like, in the predicate: no outcome.
                self._unrecorded(ticket)
                raise
            if flagged:
                if not self._ends_timed:
                    now = self._monotonic()
                self._record_failure(ticket, now, duration, _FLAGGED, result)
                return
        cell = self._cell
        next(cell.successes)
        try:
            # The outcome is reported before the transition it may cause.
            if self._on_success:
                _notify(self._on_success, "on_success", self, duration)
        finally:
            # Even if a listener raised SystemExit: the success is in the totals, so the
            # machine hears it too (and a trial gives back its slot).
            if ticket != NORMAL or not cell.clean:
                self._record_success(now, ticket)

    def _record_success(self, now: float, ticket: int) -> None:
        machine = self._machine
        with self._lock:
            old = machine.state
            machine.success(now, ticket)
            self._settle(old, _SUCCESS)
        if self._cell.outbox:
            self._deliver()

    def _flags(self, result: Any) -> bool:
        predicate = self._failure_if
        if predicate is None:
            return False
        try:
            return bool(predicate(result))
        except Exception:
            _logger.exception("failure_if of breaker %r failed; counting a success", self.name)
            return False

    def _record_failure(
        self, ticket: int, now: float, duration: float, kind: int, detail: Any
    ) -> None:
        """Count a failure: ``kind`` is ``_ERROR`` (``detail`` the exception), ``_SLOW`` or
        ``_FLAGGED`` (``detail`` the duration or the result)."""
        cell = self._cell
        machine = self._machine
        next(cell.failures)
        try:
            if self._on_failure:
                error = detail if kind == _ERROR else None
                _notify(self._on_failure, "on_failure", self, error, duration)
        finally:
            # Even if a listener raised SystemExit: the machine hears the counted failure.
            with self._lock:
                cell.success_mark = read_count(cell.successes)
                cell.last_failure = now
                old = machine.state
                machine.failure(now, ticket)
                self._settle(old, kind, detail)
            if cell.outbox:
                self._deliver()

    # -- state, manual control ------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state (an OPEN breaker whose timeout has passed reports HALF_OPEN)."""
        machine = self._machine
        if machine.state is OPEN:
            now = self._monotonic()
            if now >= machine.open_until:
                with self._lock:
                    old = machine.state
                    machine.poll(now)
                    self._settle(old, _TIME)
                    state = machine.state
                if self._cell.outbox:
                    self._deliver()
                return state
        return machine.state

    @property
    def failure_on(self) -> tuple[type[BaseException], ...]:
        """The exception types that count as failures (``failure_on``, as a tuple)."""
        return self._failure_on

    @property
    def ignore(self) -> tuple[type[BaseException], ...]:
        """The exception types that pass through uncounted (``ignore``)."""
        return self._ignore

    def force_open(self) -> None:
        """Reject every call until [`reset()`][resilience_kit.CircuitBreaker.reset] (``retry_after``
        is 0: no time will open it)."""
        self._control(lambda machine: machine.force_open(self._monotonic()), "force_open()")

    def disable(self) -> None:
        """Let every call through and open for nothing until
        [`reset()`][resilience_kit.CircuitBreaker.reset]; totals still count."""
        self._control(lambda machine: machine.disable(), "disable()")

    def reset(self) -> None:
        """Return to a fresh CLOSED state with the base recovery timeout.

        Lifetime totals (``total_*``) are kept: they are counters, and monitoring expects
        counters never to go down.
        """
        self._control(self._fresh(lambda machine: machine.reset()), "reset()")

    def _force_state(self, state: CircuitState) -> None:
        """Start afresh in ``state``, as if the breaker had got there itself (for tests).

        Private but stable:
        [`resilience_kit.testing.force_state()`][resilience_kit.testing.force_state] and the pytest
        plugin's ``breaker_state`` marker use it. OPEN has just opened, for the base recovery
        timeout by the breaker's clock; HALF_OPEN admits a trial call next; CLOSED, FORCED_OPEN and
        DISABLED are [`reset()`][resilience_kit.CircuitBreaker.reset],
        [`force_open()`][resilience_kit.CircuitBreaker.force_open] and
        [`disable()`][resilience_kit.CircuitBreaker.disable] from a fresh start. It is one
        transition for listeners, caused by ``"force_state('OPEN')"`` (say); totals are kept, and no
        failure is counted.
        """
        target = CircuitState(state)
        now = self._monotonic()
        change = self._fresh(lambda machine: machine.force(target, now))
        self._control(change, f"force_state({target.value!r})")

    def _fresh(self, change: Callable[[Machine], None]) -> Callable[[Machine], None]:
        """``change``, after forgetting the failures the state was built on (as ``reset``)."""
        cell = self._cell

        def fresh(machine: Machine) -> None:
            change(machine)
            cell.success_mark = read_count(cell.successes)
            cell.last_failure = None

        return fresh

    def _reset_totals(self) -> None:
        """Count the lifetime totals (``total_*``) from zero again (for tests).

        Private but stable: the pytest plugin's ``breakers`` fixture uses it.
        [`reset()`][resilience_kit.CircuitBreaker.reset] keeps the totals on purpose (monitoring
        expects counters never to go down); a test wants a breaker as fresh as a new one. The
        counters themselves run on (decorated functions hold them), so this moves the zero the
        snapshot subtracts.
        """
        cell = self._cell
        with self._lock:
            cell.zeros = (
                read_count(cell.successes),
                read_count(cell.failures),
                read_count(cell.rejected),
                read_count(cell.unrecorded),
            )

    def _control(self, change: Callable[[Machine], None], cause: str) -> None:
        machine = self._machine
        with self._lock:
            old = machine.state
            change(machine)
            self._settle(old, _MANUAL, cause)
        if self._cell.outbox:
            self._deliver()
        if self._cell.remote:
            self._cell.push(self._monotonic())

    def _use_clock(self, clock: Clock, *, rebase: bool = True) -> Clock:
        """Switch to ``clock`` from now on, and return the clock used so far (for tests).

        Private but stable: `use_clock_everywhere()` (the pytest plugin's ``fake_clock``)
        uses it. With ``rebase``, every stored time of the state is moved onto the new clock,
        so what is left of a recovery timeout and the ages of outcomes in the rate window stay
        the same; breakers sharing one state rebase it once. Decorated functions hold the
        clock's bound ``monotonic`` in their closure (the hot path reads a local, not an
        attribute), so that closure cell is rewritten too: switching costs nothing per call.
        A call running across the switch measures its duration on two clocks: switch between
        calls.
        """
        previous = self._clock
        monotonic = clock.monotonic
        with self._lock:
            if rebase:
                old_now = self._monotonic()
                new_now = monotonic()
                self._machine.rebase(old_now, new_now)
                cell = self._cell
                if cell.last_failure is not None:
                    cell.last_failure += new_now - old_now
            self._clock = clock
            self._monotonic = monotonic
            for wrapper in tuple(self._wrappers):
                closure = cast("tuple[Any, ...]", wrapper.__closure__)
                closure[wrapper.__code__.co_freevars.index("monotonic")].cell_contents = monotonic
        return previous

    def unregister(self) -> None:
        """Free this breaker's name in the process registry (it goes on working).

        A breaker that is garbage-collected frees its name by itself; this is for code that
        keeps the object but wants the name back, such as a test fixture.
        """
        _registry.unregister(self)

    # -- reporting ------------------------------------------------------------------------------

    def stats(self) -> BreakerStats:
        """A consistent snapshot of the breaker's state and totals."""
        cell = self._cell
        machine = self._machine
        clock = self._clock
        with self._lock:
            now = self._monotonic()
            wall = clock.wall()
            old = machine.state
            machine.poll(now)
            self._settle(old, _TIME)
            state = machine.state
            failure_count = machine.failure_count(now)
            window_rate = machine.policy.failure_rate(now)
            opened_at = machine.opened_at
            retry_after = machine.retry_after(now)
            counted = read_count(cell.successes)
            zero_successes, zero_failures, zero_rejected, zero_unrecorded = cell.zeros
            successes = counted - zero_successes
            failures = read_count(cell.failures) - zero_failures
            rejected = read_count(cell.rejected) - zero_rejected
            unrecorded = read_count(cell.unrecorded) - zero_unrecorded
            mark = cell.success_mark
            last_failure = cell.last_failure
        if cell.outbox:
            self._deliver()
        recorded = successes + failures
        return BreakerStats(
            name=self.name,
            state=state,
            failure_count=failure_count,
            consecutive_successes=max(0, counted - mark),
            total_calls=recorded + rejected + unrecorded,
            total_successes=successes,
            total_failures=failures,
            total_rejected=rejected,
            failure_rate=window_rate
            if window_rate is not None
            else (failures / recorded if recorded else 0.0),
            success_rate=successes / recorded if recorded else 1.0,
            opened_at=None if opened_at is None else wall - (now - opened_at),
            retry_after=retry_after,
            last_failure=None if last_failure is None else wall - (now - last_failure),
        )

    def to_dict(self) -> dict[str, Any]:
        """[`stats()`][resilience_kit.CircuitBreaker.stats] as a JSON-able dict; adds
        ``total_blocked`` (= ``total_rejected``).

        ``state`` is the upper-case name; rates are fractions in [0, 1]; times are epoch seconds.
        """
        data = asdict(self.stats())
        data["state"] = str(data["state"])
        data["total_blocked"] = data["total_rejected"]
        return data

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._machine.state})"
