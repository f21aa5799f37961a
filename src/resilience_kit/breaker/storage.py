"""Where a circuit breaker keeps its state.

A breaker does not own its state machine: it asks its storage for the `BreakerCell` of its
name and works on that. The default, [`MemoryStorage`][resilience_kit.MemoryStorage], hands out
plain in-process cells, and the cell *is* the state, so the in-memory breaker pays nothing for the
abstraction: its hot path reads one attribute of the cell and bumps one counter.

Two breakers bound to the same storage and name share one cell, which is how
``CircuitBreaker.shared`` shares a circuit between call sites. A storage that shares state with
other processes (Redis) returns a subclass of `BreakerCell` with ``remote = True`` and
overrides the synchronisation hooks; the breaker then calls them around its slow path.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from resilience_kit.breaker._machine import Machine, MachineSettings
from resilience_kit.clock import Clock
from resilience_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = ["BreakerCell", "BreakerStorage", "MemoryStorage", "read_count"]


def read_count(counter: itertools.count[int]) -> int:
    """The next value ``counter`` would yield, without consuming it.

    ``next()`` on an `itertools.count` is one atomic step under the GIL, which makes it an
    exact lock-free counter; its ``repr`` (``count(42)``) is the only public way to read it back.
    """
    return int(repr(counter)[6:-1])


class BreakerCell:
    """The shared state behind one breaker name: the machine, its lock and the totals.

    Attributes:
        machine: The `Machine`; mutate it only while
            holding ``lock``.
        lock: Serialises every change to ``machine`` (re-entrant, so a state-change listener
            may read the breaker).
        clean: A mirror of ``machine.clean`` (the current period while a success needs no
            judging, else ``None``; always ``None`` unless ``fast_path``) kept by the breaker after
            every change; the hot path reads it without the lock.
        successes, failures, rejected, unrecorded: Lifetime totals as lock-free
            `itertools.count` counters (read them with `read_count()`). The rate window also
            reads ``successes``, to count the successes taken without the lock.
        zeros: What those four counters read when the totals were last zeroed (for tests):
            the totals reported are the counts minus these.
        success_mark: ``successes`` at the last recorded failure (for
            ``consecutive_successes``).
        last_failure: Monotonic time of the last recorded failure, or ``None``.
        outbox: State changes waiting to be told to listeners, oldest first. They are queued
            under ``lock`` and delivered after it is released, one at a time (see
            ``delivering``), so a slow listener never holds up another thread's use of the
            breaker and listeners still hear every change in order.
        delivering: True while some thread is delivering ``outbox``; only that thread delivers.
        remote: ``False`` here. A cell whose state lives elsewhere sets it, and the breaker
            then calls `pull()` before deciding on the slow path and `push()` after
            each recorded failure or state change (the ``_async`` twins from async callers).
        fast_path: Whether a ``clean`` state lets calls take the breaker's lock-free fast path
            (and an open state reject without the slow path). True in memory; a remote cell
            sets it when it keeps a local view fresh by itself. A failure recorded on the fast
            path is then pushed too: by
            [`push()`][resilience_kit.breaker.storage.BreakerCell.push], and from an async
            call by [`push_async()`][resilience_kit.breaker.storage.BreakerCell.push_async],
            awaited before the call returns. Successes may wait for a later push.
        store_errors: Errors the cell met talking to its store (0 in memory).
        clock: The clock the cell keeps its times on when the store fixes it (a remote store
            converts the shared times to it), else ``None`` (in memory: the breaker's). A
            breaker on another clock is refused at construction.
    """

    __slots__ = (
        "__weakref__",
        "clean",
        "delivering",
        "failures",
        "last_failure",
        "lock",
        "machine",
        "outbox",
        "rejected",
        "success_mark",
        "successes",
        "unrecorded",
        "zeros",
    )

    remote = False
    fast_path = True
    store_errors = 0
    clock: Clock | None = None

    def __init__(self, settings: MachineSettings) -> None:
        self.successes = itertools.count()
        self.machine = Machine(settings, self.successes)
        self.lock = threading.RLock()
        self.clean = self.machine.clean if self.fast_path else None
        self.failures = itertools.count()
        self.rejected = itertools.count()
        self.unrecorded = itertools.count()
        self.success_mark = 0
        self.last_failure: float | None = None
        self.zeros = (0, 0, 0, 0)
        self.outbox: deque[tuple[Any, ...]] = deque()
        self.delivering = False

    def attach(self, breaker: CircuitBreaker) -> None:
        """``breaker`` now uses this cell (called once, at the end of its construction).

        Nothing to do in memory, where every change is made by a breaker of the process and
        told to its listeners by that breaker. A cell whose state other processes change
        keeps its breakers (weakly) to tell their listeners of those changes.
        """

    def pull(self, now: float) -> None:
        """Bring ``machine`` up to date with the shared state (nothing to do in memory)."""

    def push(self, now: float) -> None:
        """Publish ``machine``'s state after a recorded failure or a transition (no-op here)."""

    async def pull_async(self, now: float) -> None:
        """`pull()` for async callers (an async client)."""
        self.pull(now)

    async def push_async(self, now: float) -> None:
        """`push()` for async callers (an async client)."""
        self.push(now)


@runtime_checkable
class BreakerStorage(Protocol):
    """Where breakers keep their state; pass one as ``CircuitBreaker(storage=...)``.

    A storage maps a breaker name to a `BreakerCell`. Asking twice for one name must give
    cells that see one state: in memory, the same cell; across processes, cells that synchronise
    through the shared store.
    """

    def cell(self, name: str, settings: MachineSettings) -> BreakerCell:
        """The cell for ``name``, created with ``settings`` if it does not exist yet.

        Raises:
            ConfigurationError: A cell for ``name`` exists with different settings.
        """
        ...


class MemoryStorage:
    """In-process state: the default storage, and the fastest.

    Every breaker created without ``storage`` gets a private one. Share one instance between
    [`CircuitBreaker.shared`][resilience_kit.CircuitBreaker.shared] breakers to give them
    one circuit. A cell lives as long as some breaker uses it.
    """

    __slots__ = ("_cells", "_lock")

    def __init__(self) -> None:
        self._cells: weakref.WeakValueDictionary[str, BreakerCell] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def cell(self, name: str, settings: MachineSettings) -> BreakerCell:
        """The cell for ``name``, created with ``settings`` if no live breaker uses it.

        Raises:
            ConfigurationError: A live breaker uses ``name`` here with different settings.
        """
        with self._lock:
            cell = self._cells.get(name)
            if cell is None:
                cell = self._cells[name] = BreakerCell(settings)
            elif cell.machine.settings != settings:
                raise _mismatch(name, settings, cell.machine.settings)
            return cell

    def __repr__(self) -> str:
        return f"MemoryStorage(names={sorted(self._cells)!r})"


def _mismatch(name: str, given: MachineSettings, live: MachineSettings) -> ConfigurationError:
    """The error for a breaker whose state settings differ from those of ``name``'s live cell.

    It names every differing setting with both values; ``parameter`` is the first of them.
    """
    differ = [
        (field.name, getattr(given, field.name), getattr(live, field.name))
        for field in dataclasses.fields(MachineSettings)
        if getattr(given, field.name) != getattr(live, field.name)
    ]
    described = ", ".join(f"{key}={mine!r} (it has {theirs!r})" for key, mine, theirs in differ)
    return ConfigurationError(
        f"settings must match the breaker {name!r} already sharing this storage, got {described}",
        parameter=differ[0][0],
        value=differ[0][1],
    )
