"""Fault injection: make calls fail, slow down or return canned results on purpose.

``inject(...)`` builds an [`Injector`][resilience_kit.chaos.Injector] that, at a given rate, adds
latency and then raises an exception or returns a result instead of running the call. Use it as a
decorator on a def or async def, as a guard around a block (``with`` / ``async with``), or through
[`Injector.call()`][resilience_kit.chaos.Injector.call].

Injection is **off unless enabled**, so an injector can live in production code and be switched
on in a test or a staging deployment: per injector with ``enabled=True``, or process-wide with
the ``RESILIENCE_KIT_CHAOS=1`` environment variable (read at import) or
[`enable()`][resilience_kit.chaos.enable] / [`disable()`][resilience_kit.chaos.disable], which nest:
the newest switch still in effect decides. While it is off a decorated call costs one flag check
more than a plain call.

Decisions come from the injector's own `random.Random`, so a ``seed`` replays the same
sequence of faults, and one lock keeps the sequence and the counts exact across threads.

Examples:
    ```python
    from resilience_kit import chaos


    @chaos.inject(fault=ConnectionError, rate=0.2, seed=7)
    def fetch_rates() -> dict[str, float]:
        return {"EUR": 1.0}


    with chaos.enable():
        outcomes = []
        for _ in range(5):
            try:
                outcomes.append(fetch_rates()["EUR"])
            except ConnectionError:
                outcomes.append(None)
    ```
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar, overload

from typing_extensions import ParamSpec, Self

from resilience_kit._callables import adopt_metadata, generator_kind, is_async_callable
from resilience_kit._validation import check_callable, check_number
from resilience_kit.clock import default_clock
from resilience_kit.errors import ConfigurationError

__all__ = ["ENV_VAR", "ChaosStats", "Injector", "disable", "enable", "inject", "is_enabled"]

P = ParamSpec("P")
R = TypeVar("R")

ENV_VAR: Final = "RESILIENCE_KIT_CHAOS"
"""The environment variable that switches injection on process-wide (``1``, ``true``, ``yes``
or ``on``); read once, when [`resilience_kit.chaos`][resilience_kit.chaos] is imported."""

_TRUTHY: Final = frozenset({"1", "true", "yes", "on"})
_log = logging.getLogger(__name__)


class _Unset:
    """The type of the marker for "no ``result`` given" (``None`` is a valid result)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()

# The process-wide switch. A module global, because the disabled path of every decorated call
# reads it and a global load is the cheapest read Python has. It is derived: the newest switch on
# `_switches` decides, else `_BASE` (the environment); only `_apply()` writes it, under the lock.
_BASE: Final = os.environ.get(ENV_VAR, "").strip().lower() in _TRUTHY
_enabled: bool = _BASE
_switches: list[_Switch] = []
_switch_lock = threading.Lock()


def _apply() -> None:
    """Recompute ``_enabled`` from the switches in effect; the caller holds ``_switch_lock``."""
    global _enabled  # noqa: PLW0603 - see the comment at its definition
    _enabled = _switches[-1]._on if _switches else _BASE


def is_enabled() -> bool:
    """Whether injection is switched on process-wide (injectors built with ``enabled=None``)."""
    return _enabled


class _Switch:
    """Returned by [`enable()`][resilience_kit.chaos.enable] /
    [`disable()`][resilience_kit.chaos.disable]: in effect at once, withdrawn by ``with``.

    Each switch is its own entry on a stack, and leaving its block removes that entry and no
    other, wherever it sits: blocks that overlap without nesting (two threads, two fixtures
    torn down in creation order) cannot undo each other.
    """

    __slots__ = ("_on",)

    def __init__(self, on: bool) -> None:
        self._on = on
        with _switch_lock:
            _switches.append(self)
            _apply()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _switch_lock:
            # From the top: the common case is a block that nests properly. Absent when it has
            # already ended or a `_restore()` dropped it, which makes a second exit harmless.
            for index in range(len(_switches) - 1, -1, -1):
                if _switches[index] is self:
                    del _switches[index]
                    _apply()
                    return


def enable() -> _Switch:
    """Switch injection on process-wide, for every thread and task.

    Takes effect at once. Switches stack: the newest one still in effect decides, so a
    [`disable()`][resilience_kit.chaos.disable] inside an ``enable()`` block turns injection off
    until the ``disable()`` block ends, and then it is on again. Used as a context manager (``with
    chaos.enable(): ...``) the switch is withdrawn when its block ends, and only that switch: blocks
    in other threads or fixtures that overlap it keep theirs. Called without ``with`` it stays in
    effect until a newer switch overrides it; with no switch in effect, the ``RESILIENCE_KIT_CHAOS``
    environment variable decides.
    """
    return _Switch(True)


def disable() -> _Switch:
    """Switch process-wide injection off; the mirror of [`enable()`][resilience_kit.chaos.enable],
    stacking the same way."""
    return _Switch(False)


class _SwitchState:
    """An opaque copy of the switches in effect, made by `_snapshot()`."""

    __slots__ = ("switches",)

    def __init__(self, switches: tuple[_Switch, ...]) -> None:
        self.switches = switches


def _snapshot() -> object:
    """Capture the whole process-wide switch state, for `_restore()`.

    Private API for the pytest plugin, which brackets every test with it so that a test that
    calls [`enable()`][resilience_kit.chaos.enable] without ``with`` (or leaves a block open) cannot
    leak chaos into the next one::

        state = chaos._snapshot()
        try:
            run_the_test()
        finally:
            chaos._restore(state)

    Returns:
        An opaque object; pass it to `_restore()` and nothing else.
    """
    with _switch_lock:
        return _SwitchState(tuple(_switches))


def _restore(snapshot: object | None) -> None:
    """Put back the switch state captured by `_snapshot()`, or with ``None`` the state at
    import: no switch in effect, the environment variable deciding.

    Switches made since the snapshot are dropped (leaving their blocks afterwards does
    nothing), and switches that were in effect then are back in effect, in their order.

    Raises:
        TypeError: ``snapshot`` is neither None nor what `_snapshot()` returned.
    """
    if snapshot is not None and not isinstance(snapshot, _SwitchState):
        raise TypeError(f"chaos._restore() takes what chaos._snapshot() returned, got {snapshot!r}")
    with _switch_lock:
        _switches[:] = snapshot.switches if snapshot is not None else ()
        _apply()


@dataclass(frozen=True, slots=True)
class ChaosStats:
    """A snapshot of what an injector has done since it was built or
    [`reset()`][resilience_kit.chaos.Injector.reset].

    Attributes:
        calls: Calls (or block entries) that met the injector while it was enabled.
        injected: How many of those it acted on (latency, fault or result).
        latency: Total seconds of latency it added.
    """

    calls: int
    injected: int
    latency: float

    @property
    def injection_rate(self) -> float:
        """``injected / calls``; ``0.0`` before the first call."""
        return self.injected / self.calls if self.calls else 0.0


class Injector:
    """Injects faults, latency or results at a given rate. Build it with
    [`inject()`][resilience_kit.chaos.inject].

    The forms share one decision core:

    * ``@injector`` on a def or async def (the signature is kept for type checkers);
    * ``with injector:`` / ``async with injector:`` guard a block: entering it may sleep and
      raise, and [`point()`][resilience_kit.chaos.Injector.point] /
      [`point_async()`][resilience_kit.chaos.Injector.point_async] do the same anywhere in a loop;
    * ``injector.call(fn, *args)`` / ``await injector.call_async(fn, *args)``.
    """

    __slots__ = (
        "_async_sleep",
        "_calls",
        "_enabled",
        "_fault",
        "_injected",
        "_latency",
        "_latency_total",
        "_lock",
        "_make_fault",
        "_rate",
        "_result",
        "_rng",
        "_seed",
        "_sleep",
    )

    def __init__(
        self,
        *,
        fault: type[BaseException] | BaseException | None,
        rate: float,
        latency: float | tuple[float, float] | None,
        result: Any,
        seed: int | None,
        enabled: bool | None,
        sleep: Callable[[float], object] | None,
        async_sleep: Callable[[float], Awaitable[object]] | None,
    ) -> None:
        self._fault = fault
        self._make_fault = _fault_factory(fault)
        self._rate = check_number("rate", rate, minimum=0, maximum=1)
        self._latency = _check_latency(latency)
        if fault is not None and result is not _UNSET:
            raise ConfigurationError(
                f"fault and result are exclusive: an injected call either raises or returns, "
                f"got fault={fault!r} and result={result!r}",
                parameter="result",
                value=result,
            )
        if fault is None and result is _UNSET and latency is None:
            raise ConfigurationError(
                "inject() needs something to inject: fault, latency or result, got none",
                parameter="fault",
                value=None,
            )
        self._result = result
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigurationError(
                f"seed must be an int or None, got {seed!r}", parameter="seed", value=seed
            )
        self._seed = seed
        if enabled is not None and not isinstance(enabled, bool):
            raise ConfigurationError(
                f"enabled must be True, False or None, got {enabled!r}",
                parameter="enabled",
                value=enabled,
            )
        self._enabled = enabled
        self._sleep: Callable[[float], object] | None = check_callable("sleep", sleep)
        self._async_sleep: Callable[[float], Awaitable[object]] | None = check_callable(
            "async_sleep", async_sleep
        )
        self._rng = random.Random(seed)  # noqa: S311 - chaos, not cryptography
        self._lock = threading.Lock()
        self._calls = 0
        self._injected = 0
        self._latency_total = 0.0

    # -- the core: one decision per call, no I/O, no asyncio -----------------------------------

    def _active(self) -> bool:
        return _enabled if self._enabled is None else self._enabled

    def _draw(self) -> float | None:
        """Count a call and decide: ``None`` to leave it alone, else the latency to add first."""
        with self._lock:
            self._calls += 1
            if self._rng.random() >= self._rate:
                return None
            low, high = self._latency
            delay = low if low == high else self._rng.uniform(low, high)
            self._injected += 1
            self._latency_total += delay
            return delay

    def _outcome(self, target: object) -> bool:
        """After the latency: raise the fault, or tell whether to return the canned result."""
        make_fault = self._make_fault
        if make_fault is not None:
            error = make_fault()
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("chaos: raising %r in %s", error, _describe(target))
            raise error
        return self._result is not _UNSET

    def _sync_sleeper(self) -> Callable[[float], object]:
        if self._sleep is not None:
            return self._sleep
        # A clock that can sleep (FakeClock) is a test's clock: latency advances it instead of
        # blocking, and a breaker built on the same clock sees the call as slow.
        clock_sleep: Callable[[float], object] | None = getattr(default_clock(), "sleep", None)
        return clock_sleep if callable(clock_sleep) else time.sleep

    def _async_sleeper(self) -> Callable[[float], Awaitable[object]]:
        if self._async_sleep is not None:
            return self._async_sleep
        clock_sleep: Callable[[float], Awaitable[object]] | None = getattr(
            default_clock(), "async_sleep", None
        )
        return clock_sleep if callable(clock_sleep) else asyncio.sleep

    # -- the forms -----------------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` through the injector."""
        if not self._active():
            return fn(*args, **kwargs)
        return self._call_sync(fn, args, kwargs)

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``fn(*args, **kwargs)`` through the injector."""
        if not self._active():
            return await fn(*args, **kwargs)
        return await self._call_async(fn, args, kwargs)

    def _inject(self, target: object) -> bool:
        """Draw, sleep the latency, raise the fault; True: return the canned result instead."""
        delay = self._draw()
        if delay is None:
            return False
        if delay:
            self._sync_sleeper()(delay)
        return self._outcome(target)

    async def _inject_async(self, target: object) -> bool:
        """As `_inject()`, awaiting the latency."""
        delay = self._draw()
        if delay is None:
            return False
        if delay:
            await self._async_sleeper()(delay)
        return self._outcome(target)

    def _call_sync(self, fn: Callable[..., R], args: Any, kwargs: Any) -> R:
        if self._inject(fn):
            return self._result  # type: ignore[no-any-return]
        return fn(*args, **kwargs)

    async def _call_async(self, fn: Callable[..., Awaitable[R]], args: Any, kwargs: Any) -> R:
        if await self._inject_async(fn):
            return self._result  # type: ignore[no-any-return]
        return await fn(*args, **kwargs)

    def point(self) -> None:
        """A checkpoint: may sleep and raise, like entering ``with injector:``."""
        if self._active():
            self._check_point()
            self._inject(None)

    async def point_async(self) -> None:
        """The async checkpoint: may ``await`` the latency and raise."""
        if self._active():
            self._check_point()
            await self._inject_async(None)

    def _check_point(self) -> None:
        if self._result is not _UNSET:
            raise ConfigurationError(
                "result= replaces a call's return value; a block or a checkpoint has none: "
                "decorate a function or use call()",
                parameter="result",
                value=self._result,
            )

    def __enter__(self) -> Self:
        self.point()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> Self:
        await self.point_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a def or async def; every call goes through the injector.

        The signature is kept. An async callable (an ``async def``, a `functools.partial()`
        of one, an object whose class has ``async def __call__``) gets an ``async def`` wrapper,
        so latency is awaited, never slept on the event loop. ``staticmethod`` and
        ``classmethod`` objects are wrapped inside. With ``enabled=False`` the injector can
        never act, so ``fn`` is returned unchanged.

        Raises:
            ConfigurationError: ``fn`` is not callable, or it is a generator or async generator
                function: calling one only creates the generator, so a fault or a result would
                replace the generator itself and latency would come before any of its code ran.
                Put [`point()`][resilience_kit.chaos.Injector.point] /
                [`point_async()`][resilience_kit.chaos.Injector.point_async] (or ``with`` / ``async
                with``) inside it instead.
        """
        if isinstance(fn, (staticmethod, classmethod)):
            return type(fn)(self(fn.__func__))
        check_callable("fn", fn)
        kind = generator_kind(fn)
        if kind is not None:
            raise ConfigurationError(
                f"chaos.inject cannot decorate the {kind} {fn!r}: calling it only creates the "
                "generator, so a fault or result would replace the generator itself and latency "
                "would come before any of its code ran; call `injector.point()` (`await "
                "injector.point_async()`) or use `with injector:` (`async with`) inside it, "
                "where it talks to the dependency",
                parameter="fn",
                value=fn,
            )
        forced = self._enabled
        if forced is False:
            return fn  # never acts, so it costs nothing
        # The disabled path is inlined (no method call): it is what production pays.
        if is_async_callable(fn):
            call_async = self._call_async

            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                if _enabled if forced is None else forced:
                    return await call_async(fn, args, kwargs)
                return await fn(*args, **kwargs)

            adopt_metadata(async_wrapper, fn)
            return async_wrapper

        call_sync = self._call_sync

        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            if _enabled if forced is None else forced:
                return call_sync(fn, args, kwargs)
            return fn(*args, **kwargs)

        adopt_metadata(wrapper, fn)
        return wrapper

    # -- introspection -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the injector acts right now (its own ``enabled``, else the process switch)."""
        return self._active()

    def stats(self) -> ChaosStats:
        """What the injector has done so far."""
        with self._lock:
            return ChaosStats(self._calls, self._injected, self._latency_total)

    def reset(self) -> None:
        """Zero the counts and re-seed, so a seeded injector replays its sequence from the start."""
        with self._lock:
            self._rng.seed(self._seed)
            self._calls = self._injected = 0
            self._latency_total = 0.0

    def __repr__(self) -> str:
        parts = [f"rate={self._rate!r}"]
        if self._fault is not None:
            parts.append(f"fault={self._fault!r}")
        if self._latency != (0.0, 0.0):
            low, high = self._latency
            parts.append(f"latency={low!r}" if low == high else f"latency=({low!r}, {high!r})")
        if self._result is not _UNSET:
            parts.append(f"result={self._result!r}")
        parts.append(f"enabled={self.enabled!r}")
        return f"Injector({', '.join(parts)})"


def inject(
    *,
    fault: type[BaseException] | BaseException | None = None,
    rate: float = 1.0,
    latency: float | tuple[float, float] | None = None,
    result: Any = _UNSET,
    seed: int | None = None,
    enabled: bool | None = None,
    sleep: Callable[[float], object] | None = None,
    async_sleep: Callable[[float], Awaitable[object]] | None = None,
) -> Injector:
    """Build an [`Injector`][resilience_kit.chaos.Injector]: latency, then a fault or a result, at
    ``rate``.

    Each call is injected with probability ``rate``. An injected call first sleeps for
    ``latency`` (if given), then raises ``fault`` (if given), returns ``result`` (if given) without
    running the call, or else runs the call late.

    Args:
        fault: The exception to raise: a class, built with no arguments for each injection
            (checked here by building one), or an instance, copied for each injection so every
            injected fault is a fresh exception with its own traceback and no ``__cause__`` or
            ``__context__``. The copy is shallow: its ``args`` and attributes are the
            template's own objects, except ``__notes__``, which each copy gets as a list of its
            own (notes added to an injected fault stay on that fault). An instance whose class
            cannot be rebuilt from its ``args`` (keyword-only constructor arguments, like
            httpx's ``HTTPStatusError(message, request=..., response=...)``) is copied without
            calling its ``__init__``.
        rate: The probability, ``0 <= rate <= 1``, that a call is injected.
        latency: Seconds to add, ``>= 0``, or a ``(low, high)`` range drawn uniformly.
        result: A value to return instead of running the call (decorator and ``call`` only).
        seed: Seeds the injector's own random generator, so runs replay the same decisions.
        enabled: ``True`` or ``False`` switch this injector on or off for good; ``None`` (the
            default) follows the process-wide switch ([`enable()`][resilience_kit.chaos.enable],
            ``RESILIENCE_KIT_CHAOS``).
        sleep: Sleeps for sync latency. Default: the default clock's ``sleep`` when it has one
            ([`FakeClock`][resilience_kit.testing.FakeClock] advances instead of blocking), else
            `time.sleep()`.
        async_sleep: Awaited for async latency; default: the clock's ``async_sleep``, else
            `asyncio.sleep()` (pass your own under trio).

    Raises:
        ConfigurationError: A parameter is out of range; ``fault`` is a class that cannot be
            built with no arguments, or an instance that cannot be copied; both ``fault`` and
            ``result`` are given; or none of ``fault``, ``latency`` and ``result`` is.
    """
    return Injector(
        fault=fault,
        rate=rate,
        latency=latency,
        result=result,
        seed=seed,
        enabled=enabled,
        sleep=sleep,
        async_sleep=async_sleep,
    )


def _fault_factory(fault: object) -> Callable[[], BaseException] | None:
    """Validate ``fault`` and return what makes one fresh exception per injection.

    Each factory is tried once here, so a fault that cannot be made fails at construction
    with a ConfigurationError instead of as a TypeError in the user's call.
    """
    if fault is None:
        return None
    if isinstance(fault, type) and issubclass(fault, BaseException):
        try:
            fault()
        except Exception as error:
            raise ConfigurationError(
                f"fault must be an exception class that can be built with no arguments or an "
                f"exception instance, got {fault!r} (building it failed: {error!r}; pass an "
                f"instance instead, e.g. fault={fault.__name__}(...))",
                parameter="fault",
                value=fault,
            ) from error
        return fault
    if not isinstance(fault, BaseException):
        raise ConfigurationError(
            f"fault must be an exception class or instance, got {fault!r}",
            parameter="fault",
            value=fault,
        )
    failures = []
    for copier in (_copy_fault, _rebuild_fault):
        try:
            copier(fault)
        except Exception as error:
            failures.append(error)
        else:
            return functools.partial(copier, fault)
    raise ConfigurationError(
        f"fault must be an exception class or a copyable exception instance, got {fault!r} "
        f"(copying it failed: {failures[0]!r}, then {failures[1]!r}; pass a subclass that "
        f"can be built with no arguments instead)",
        parameter="fault",
        value=fault,
    ) from failures[-1]


def _own_notes(copied: BaseException, template: BaseException) -> BaseException:
    # A shallow copy would share the template's __notes__ list: notes that a handler adds to
    # one injected fault would appear on the template and on every later injection.
    notes = getattr(template, "__notes__", None)
    if isinstance(notes, list):
        copied.__notes__ = list(notes)  # type: ignore[attr-defined]
    return copied


def _copy_fault(template: BaseException) -> BaseException:
    """``copy.copy``: rebuilds from ``args`` through ``__init__``, then restores ``__dict__``."""
    return _own_notes(copy.copy(template), template)


# Fields that C exception types keep outside ``__dict__``; ``__init__`` fills them from the
# arguments, so a copy that skips ``__init__`` carries them over itself.
_C_FIELDS: Final = ("errno", "strerror", "filename", "filename2")


def _rebuild_fault(template: BaseException) -> BaseException:
    """A copy without ``__init__``, for a class that cannot be rebuilt from its ``args``.

    The new object has its own traceback, ``__cause__`` and ``__context__`` (all empty) and
    takes the template's ``args`` and ``__dict__``.
    """
    cls = type(template)
    copied: BaseException = cls.__new__(cls)
    copied.args = template.args
    copied.__dict__.update(template.__dict__)
    if isinstance(template, OSError):
        for name in _C_FIELDS:
            value = getattr(template, name)
            if value is not None:  # setting None would print as "None -> None" in str()
                setattr(copied, name, value)
    return _own_notes(copied, template)


def _check_latency(latency: object) -> tuple[float, float]:
    if latency is None:
        return (0.0, 0.0)
    if isinstance(latency, tuple):
        bounds = None
        if len(latency) == 2:
            try:
                bounds = (
                    check_number("latency", latency[0], minimum=0),
                    check_number("latency", latency[1], minimum=0),
                )
            except ConfigurationError:
                bounds = None
        if bounds is None or bounds[0] > bounds[1]:
            raise ConfigurationError(
                f"latency must be seconds >= 0 or a (low, high) range with 0 <= low <= high, "
                f"got {latency!r}",
                parameter="latency",
                value=latency,
            )
        return bounds
    seconds = check_number("latency", latency, minimum=0)
    return (seconds, seconds)


def _describe(target: object) -> str:
    if target is None:
        return "a checkpoint"
    return getattr(target, "__qualname__", repr(target))
