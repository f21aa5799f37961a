"""The injector: one decision core (rate, latency, fault or result) and the forms that use it
(decorator, ``with`` guard, checkpoint, ``call``)."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar, overload

from typing_extensions import ParamSpec, Self

from resilience_kit._callables import adopt_metadata, generator_kind, is_async_callable
from resilience_kit._chaos import switch
from resilience_kit._chaos.faults import check_latency, fault_factory
from resilience_kit._validation import check_callable, check_number
from resilience_kit.clock import default_clock
from resilience_kit.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")

# The documented logger name, the public module's rather than this private one's.
_log = logging.getLogger("resilience_kit.chaos")


class _Unset:
    """The type of the marker for "no ``result`` given" (``None`` is a valid result)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


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
        self._make_fault = fault_factory(fault)
        self._rate = check_number("rate", rate, minimum=0, maximum=1)
        self._latency = check_latency(latency)
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
        # The switch's flag itself, not is_enabled(): one call less on every call() and point().
        return switch._enabled if self._enabled is None else self._enabled

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
        wrapped = (
            switch.gate_async(fn, forced, self._call_async)
            if is_async_callable(fn)
            else switch.gate(fn, forced, self._call_sync)
        )
        adopt_metadata(wrapped, fn)
        return wrapped

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


def _describe(target: object) -> str:
    if target is None:
        return "a checkpoint"
    return getattr(target, "__qualname__", repr(target))
