"""The [`CircuitBreaker`][resilience_kit.CircuitBreaker]: construction, call forms, control.

The decisions live in ``_machine``; the breaker adapts calls to it. The sync and async forms
share every step except the ``await``: the general path (``_call``/``_call_async``), admission,
outcome handling and rejection are the functions of ``_outcomes``, which the class binds as
methods where the wrappers and other modules call them (``_failed``, ``_reject``...). The
decorator's hot paths are in ``_wrappers``, ``with`` blocks in ``_blocks``, manual control in
``_control``, the clock switch in ``_clocks``, the snapshot in ``_stats``, listeners and the
words for a transition in ``_listeners``, the fallback's calling convention in ``_fallback``.

Listeners of state changes are never called under the lock: a change is queued on the cell
under the lock (``_listeners.settle``) and delivered after it is released (``deliver``).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from types import TracebackType
from typing import Any, TypeVar, cast

from typing_extensions import ParamSpec, Self

from resilience_kit._callables import generator_kind, is_async_callable
from resilience_kit.breaker import _listeners, _outcomes, _registry
from resilience_kit.breaker._blocks import enter_block, exit_block
from resilience_kit.breaker._clocks import check_clock, switch_clock
from resilience_kit.breaker._config import validate
from resilience_kit.breaker._control import control, force_state, fresh, reset_totals
from resilience_kit.breaker._fallback import accepts, answer, check_fits
from resilience_kit.breaker._listeners import (
    TIME,
    BreakerListener,
    add_global_listener,
    check_listeners,
    hooks,
    remove_global_listener,
)
from resilience_kit.breaker._machine import OPEN, CircuitState, Machine
from resilience_kit.breaker._stats import BreakerStats, snapshot
from resilience_kit.breaker._windows import FailureRateWindow
from resilience_kit.breaker._wrappers import wrap_async, wrap_sync
from resilience_kit.breaker.storage import BreakerCell, BreakerStorage, MemoryStorage
from resilience_kit.clock import Clock
from resilience_kit.errors import ConfigurationError

__all__ = [
    "BreakerListener",
    "BreakerStats",
    "CircuitBreaker",
    "add_global_listener",
    "remove_global_listener",
]

# The names resilient() imports from here.
_accepts, _answer = accepts, answer

P = ParamSpec("P")
R = TypeVar("R")


class _AlwaysSlow:
    """The gate of a breaker that times calls or inspects results: never the bare fast path."""

    __slots__ = ()
    clean = None


_ALWAYS_SLOW = _AlwaysSlow()
# The process-wide storage of CircuitBreaker.shared() when no storage is given.
_SHARED_MEMORY = MemoryStorage()


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
        "_on_store",
        "_on_success",
        "_slow",
        "_timed",
        "_window",
        "_wrappers",
        "name",
        "storage",
    )

    name: str
    storage: BreakerStorage
    _cell: BreakerCell
    _machine: Machine

    # Functions of _outcomes, _listeners and _control, bound as methods: the wrappers and the
    # other modules call them on the breaker, as cheaply as methods defined here.
    _call = _outcomes.general_call
    _call_async = _outcomes.general_call_async
    _reject = _outcomes.reject
    _use_fallback = _outcomes.use_fallback
    _failed = _outcomes.failed
    _late_success = _outcomes.late_success
    _settle = _listeners.settle
    _deliver = _listeners.deliver
    _force_state = force_state
    _reset_totals = reset_totals

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
        config = validate(name, options)
        settings = config.settings
        self._slow = config.slow
        self._failure_on = config.failure_on
        self._ignore = config.ignore
        self._failure_if = config.failure_if
        self._fallback = config.fallback
        self._accepts_error = accepts(self._fallback, "error")
        storage = config.storage
        clock = config.clock
        listeners = check_listeners(options["listeners"])
        self._on_change = tuple(
            (hook, accepts(hook, "cause")) for hook in hooks(listeners, "on_state_change")
        )
        self._on_success = hooks(listeners, "on_success")
        self._on_failure = hooks(listeners, "on_failure")
        self._on_rejected = hooks(listeners, "on_rejected")
        # The shared store's health: (on_storage_degraded, on_storage_recovered) hooks.
        self._on_store = (
            hooks(listeners, "on_storage_degraded"),
            hooks(listeners, "on_storage_recovered"),
        )
        self._timed = bool(self._slow is not None or self._on_success or self._on_failure)

        self.name = name
        self.storage = storage
        self._clock = clock
        self._monotonic = clock.monotonic
        self._cell = storage.cell(name, settings)
        check_clock(self._cell, clock, storage)
        self._machine = self._cell.machine
        self._lock = self._cell.lock
        plain = not self._timed and self._failure_if is None
        self._gate = self._cell if plain else _ALWAYS_SLOW
        # Reading the clock again when a call ends is needed only to time it, or to place its
        # outcome in the rate window; a failure always reads it (opened_at, last_failure).
        self._ends_timed = self._timed or settings.failure_rate is not None
        policy = self._machine.policy
        self._window = policy if type(policy) is FailureRateWindow else None
        if self._window is not None and self._window.successes is not self._cell.successes:
            # A storage's own cell that built its machine without the cell's counter.
            with self._lock:
                self._window.follow(self._cell.successes)
        self._wrappers: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()
        _registry.register(self, shared)
        # Last: a breaker whose construction failed is never told of anything.
        self._cell.attach(self)

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
                the exception); or ``fallback`` cannot take the arguments ``fn`` is called with
                (every way of calling ``fn`` is bound to the fallback's signature).
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
        if self._accepts_error and accepts(fn, "error"):
            raise ConfigurationError(
                f"fallback {self._fallback!r} of breaker {self.name!r} takes `error`, and so "
                f"does {fn!r}: the fallback gets the call's own arguments, so it could not "
                "tell the call's `error` from the exception; rename the parameter of one of "
                "them, or give this function a fallback without `error`",
                parameter="fallback",
                value=self._fallback,
            )
        check_fits(
            self._fallback, fn, passes_error=self._accepts_error, owner=f"breaker {self.name!r}"
        )
        if is_async_callable(fn):
            return cast("Callable[P, R]", wrap_async(self, cast("Any", fn)))
        return wrap_sync(self, fn)

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

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Admit the block as one call (raises [`CircuitOpenError`][resilience_kit.CircuitOpenError]
        when rejected).

        ``fallback`` does not apply to blocks: there is no return value to replace.
        """
        now = self._monotonic()
        if self._cell.remote:
            self._cell.pull(now)
        enter_block(self, now)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Record the block's outcome; an exception always propagates."""
        exit_block(self, error)
        if self._cell.remote:
            self._cell.push(self._monotonic())

    async def __aenter__(self) -> Self:
        """``async with breaker:``: as ``with``."""
        now = self._monotonic()
        if self._cell.remote:
            await self._cell.pull_async(now)
        enter_block(self, now)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Record the block's outcome; an exception always propagates."""
        exit_block(self, error)
        if self._cell.remote:
            await self._cell.push_async(self._monotonic())

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
                    self._settle(old, TIME)
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
        control(self, lambda machine: machine.force_open(self._monotonic()), "force_open()")

    def disable(self) -> None:
        """Let every call through and open for nothing until
        [`reset()`][resilience_kit.CircuitBreaker.reset]; totals still count."""
        control(self, lambda machine: machine.disable(self._monotonic()), "disable()")

    def reset(self) -> None:
        """Return to a fresh CLOSED state with the base recovery timeout.

        Lifetime totals (``total_*``) are kept: they are counters, and monitoring expects
        counters never to go down.
        """
        control(self, fresh(self, lambda machine: machine.reset(self._monotonic())), "reset()")

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
        return switch_clock(self, clock, rebase=rebase)

    def unregister(self) -> None:
        """Free this breaker's name in the process registry (it goes on working).

        A breaker that is garbage-collected frees its name by itself; this is for code that
        keeps the object but wants the name back, such as a test fixture.
        """
        _registry.unregister(self)

    # -- reporting ------------------------------------------------------------------------------

    def stats(self) -> BreakerStats:
        """A consistent snapshot of the breaker's state and totals."""
        return snapshot(self)

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
