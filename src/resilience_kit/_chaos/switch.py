"""The process-wide chaos switch: ``enable()`` / ``disable()``, the environment variable, and
the check every decorated call makes against it.

The gates that wrap a decorated function live here, next to the flag they read, because their
disabled path is what production pays for an injector: one module-global load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, TypeVar

from typing_extensions import ParamSpec

P = ParamSpec("P")
R = TypeVar("R")

ENV_VAR: Final = "RESILIENCE_KIT_CHAOS"
"""The environment variable that switches injection on process-wide (``1``, ``true``, ``yes``
or ``on``); read once, when [`resilience_kit.chaos`][resilience_kit.chaos] is imported."""

_TRUTHY: Final = frozenset({"1", "true", "yes", "on"})

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


def gate(
    fn: Callable[P, R],
    forced: bool | None,
    injected: Callable[[Callable[P, R], Any, Any], R],
) -> Callable[P, R]:
    """Wrap ``fn``: ``injected(fn, args, kwargs)`` while injection is on, else ``fn`` itself.

    ``forced`` is the injector's own ``enabled`` (``None``: follow the process-wide switch). The
    disabled path is inlined (no method call): it is what production pays.
    """

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _enabled if forced is None else forced:
            return injected(fn, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper


def gate_async(
    fn: Callable[P, Awaitable[R]],
    forced: bool | None,
    injected: Callable[[Callable[P, Awaitable[R]], Any, Any], Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """As `gate()`, for an async callable: the latency is awaited, never slept on the loop."""

    async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _enabled if forced is None else forced:
            return await injected(fn, args, kwargs)
        return await fn(*args, **kwargs)

    return async_wrapper
