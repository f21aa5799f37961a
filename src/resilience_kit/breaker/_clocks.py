"""Switching breakers onto another clock, for tests (the pytest plugin's ``fake_clock``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from resilience_kit.breaker import _registry
from resilience_kit.breaker._listeners import TIME
from resilience_kit.clock import Clock, SystemClock
from resilience_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker
    from resilience_kit.breaker.storage import BreakerCell

__all__ = ["check_clock", "switch_clock", "use_clock_everywhere"]


def use_clock_everywhere(clock: Clock, *, then: Clock | None = None) -> Callable[[], None]:
    """Run every live breaker on ``clock``; return the function that puts their clocks back.

    For tests (the pytest plugin's ``fake_clock``): breakers created at import time keep the
    clock they were created with, and this reaches them. A breaker whose state is kept in a
    store shared with other processes (``RedisStorage``) switches with its storage, which
    then times the shared state by ``clock`` too (its ``_use_clock``); its local view is read
    again rather than rebased.

    Every live storage is switched too, those without a breaker yet included (made at import
    time, its breakers made during the test).

    The undo gives each breaker switched here its own clock back (and each storage its own).
    With ``then``, it also moves every other live breaker still on ``clock`` (those created
    while it was in use) to ``then``: ``clock`` stops being the process's time when the test
    ends, and a breaker that outlives the test, such as a module-level one first imported
    inside it, must not stay frozen on it. Without ``then`` those are left on ``clock``.
    Either way a local breaker's times are rebased, so what is left of its timeouts carries
    over.
    """
    switched: list[tuple[CircuitBreaker, Clock]] = []
    stores: dict[int, tuple[Any, Clock | None]] = {}
    rebased: set[int] = set()
    for breaker in _registry.every_breaker():
        cell = breaker._cell
        if cell.remote:
            _switch_store(breaker.storage, clock, stores)
            switched.append((breaker, breaker._use_clock(clock, rebase=False)))
            continue
        first = id(cell) not in rebased
        rebased.add(id(cell))
        switched.append((breaker, breaker._use_clock(clock, rebase=first)))
    # Storages with no breaker yet (made at import, their breakers made in the test) too.
    for store in _live_stores():
        _switch_store(store, clock, stores)

    def restore() -> None:
        done: set[int] = set()
        for store, previous in stores.values():
            store._use_clock(previous)
        for breaker, previous in switched:
            first = id(breaker._cell) not in done
            done.add(id(breaker._cell))
            breaker._use_clock(previous, rebase=first and not breaker._cell.remote)
        if then is None:
            return
        restored = {id(breaker) for breaker, _ in switched}
        later: dict[int, tuple[Any, Clock | None]] = {}
        for breaker in _registry.every_breaker():
            if breaker._clock is clock and id(breaker) not in restored:
                cell = breaker._cell
                if cell.remote and getattr(breaker.storage, "fixed_clock", None) is clock:
                    _switch_store(breaker.storage, then, later)
                first = id(cell) not in done
                done.add(id(cell))
                breaker._use_clock(then, rebase=first and not cell.remote)
        for store in _live_stores():
            if id(store) not in stores and getattr(store, "fixed_clock", None) is clock:
                _switch_store(store, then, later)

    return restore


def _live_stores() -> list[Any]:
    """Every live shared store ([RedisStorage][resilience_kit.RedisStorage]), with breakers
    or not; none when that module was never imported."""
    module = sys.modules.get("resilience_kit.breaker._redis.storage")
    return [] if module is None else module.live_storages()


def _switch_store(store: Any, clock: Clock, switched: dict[int, tuple[Any, Clock | None]]) -> None:
    """Put a shared store on ``clock`` once, noting the clock it had."""
    use_clock = getattr(store, "_use_clock", None)
    if use_clock is not None and id(store) not in switched:
        switched[id(store)] = (store, use_clock(clock))


def switch_clock(breaker: CircuitBreaker, clock: Clock, *, rebase: bool) -> Clock:
    """``CircuitBreaker._use_clock``: see there."""
    previous = breaker._clock
    monotonic = clock.monotonic
    with breaker._lock:
        if rebase:
            old_now = breaker._monotonic()
            new_now = monotonic()
            breaker._machine.rebase(old_now, new_now)
            breaker._settle(breaker._machine.state, TIME)  # the gate, for the turned window
            cell = breaker._cell
            if cell.last_failure is not None:
                cell.last_failure += new_now - old_now
        breaker._clock = clock
        breaker._monotonic = monotonic
        for wrapper in tuple(breaker._wrappers):
            closure = cast("tuple[Any, ...]", wrapper.__closure__)
            closure[wrapper.__code__.co_freevars.index("monotonic")].cell_contents = monotonic
    return previous


def check_clock(cell: BreakerCell, clock: Clock, storage: object) -> None:
    """Refuse a breaker whose ``clock`` is not the one ``cell`` keeps its times on: the
    shared state's times would be read on one clock and compared on another.

    Raises:
        ConfigurationError: ``clock`` differs from ``cell.clock``.
    """
    own = cell.clock
    if own is None or own is clock or (type(own) is type(clock) is SystemClock):
        return
    raise ConfigurationError(
        f"clock must be the clock {storage!r} times the shared state by ({own!r}), got "
        f"{clock!r}; pass the same clock= to both, or to neither",
        parameter="clock",
        value=clock,
    )
