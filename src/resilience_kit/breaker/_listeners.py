"""A breaker's listeners: the protocol, the process-wide hooks, and the words for a transition.

Listeners are called outside the breaker's lock: a transition is queued on the state cell as a
`Change` under the lock (`settle`) and told once it is released (`deliver`, through
`announce`, which makes the words of its cause only if some listener asks for them).
"""

from __future__ import annotations

import logging
import reprlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from resilience_kit import _validation as check
from resilience_kit.breaker._fallback import accepts
from resilience_kit.breaker._machine import HALF_OPEN, OPEN, CircuitState, MachineSettings
from resilience_kit.breaker._windows import FailureRateWindow

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = [
    "BreakerListener",
    "Change",
    "add_global_listener",
    "announce",
    "check_listeners",
    "deliver",
    "hooks",
    "notify",
    "remove_global_listener",
    "settle",
]

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

    def on_storage_degraded(self, breaker: CircuitBreaker, error: BaseException) -> None:
        """The breaker's shared store (a [RedisStorage][resilience_kit.RedisStorage]) stopped
        answering with ``error``; the breaker now decides as its ``fallback`` says."""

    def on_storage_recovered(self, breaker: CircuitBreaker) -> None:
        """The shared store answers again; the breaker resynchronises with it."""


# (listener, its on_state_change, whether that takes ``cause``), in the order they were added.
global_listeners: list[tuple[Any, Callable[..., object], bool]] = []


def add_global_listener(listener: Any) -> None:
    """Call ``listener.on_state_change(breaker, old, new)`` on every breaker's transitions.

    As for a [`BreakerListener`][resilience_kit.BreakerListener], the method also gets
    ``cause=`` (what caused the transition, in words) if it declares a parameter of that name.
    This is the process-wide hook the test recorder uses; it costs nothing until a breaker
    changes state.
    """
    method = listener.on_state_change
    global_listeners.append((listener, method, accepts(method, "cause")))


def remove_global_listener(listener: Any) -> None:
    """Undo [`add_global_listener`][resilience_kit.breaker.add_global_listener].

    Nothing happens if ``listener`` was not added.
    """
    for entry in global_listeners:
        if entry[0] is listener:
            global_listeners.remove(entry)
            return


def notify(callbacks: Iterable[Callable[..., object]], event: str, *args: object) -> None:
    """Call each of ``callbacks`` with ``args``; one that raises is logged, never propagated."""
    for callback in callbacks:
        try:
            callback(*args)
        except Exception:
            _logger.exception("breaker listener %r failed in %s", callback, event)


_EVENTS = (
    "on_state_change",
    "on_success",
    "on_failure",
    "on_rejected",
    "on_storage_degraded",
    "on_storage_recovered",
)


def check_listeners(value: Any) -> tuple[Any, ...]:
    """``value`` as a tuple of listeners, or a `ConfigurationError` naming ``listeners``."""
    allowed = "an iterable of listeners (objects with some of " + ", ".join(_EVENTS) + ")"
    try:
        listeners = tuple(value)
    except TypeError:
        raise check._fail("listeners", value, allowed) from None
    for listener in listeners:
        if not any(callable(getattr(listener, event, None)) for event in _EVENTS):
            raise check._fail("listeners", value, allowed)
    return listeners


def hooks(listeners: tuple[Any, ...], event: str) -> tuple[Callable[..., object], ...]:
    """The listeners' methods for ``event``, leaving out the no-op defaults."""
    default = getattr(BreakerListener, event)
    found = []
    for listener in listeners:
        method = getattr(listener, event, None)
        if method is not None and getattr(method, "__func__", None) is not default:
            found.append(method)
    return tuple(found)


# What just happened to the machine, passed to ``settle`` so that a transition
# can be explained; the words are made from it (and its detail) only when there is a transition
# to explain.
TIME = 0  # time passed (a poll); no detail
SUCCESS = 1  # a recorded success; no detail
ERROR = 2  # a recorded failure; detail: the exception
SLOW = 3  # a call slower than slow_call_threshold; detail: its duration
FLAGGED = 4  # a result failure_if flagged; detail: the result
MANUAL = 5  # a manual control; detail: its description

# Errors and results in a cause: whole for the usual short ones, cut down for a huge payload.
_short = reprlib.Repr()
_short.maxother = _short.maxstring = 120


class Change(NamedTuple):
    """A transition waiting in a cell's outbox, with the facts its cause is told from."""

    old: CircuitState
    new: CircuitState
    kind: int  # one of TIME... above
    detail: Any
    timeout: float  # the recovery timeout then
    judged: tuple[int, int] | None  # (failures, calls) in the rate window then, if any


def announce(breaker: CircuitBreaker, change: Change) -> None:
    """Tell ``breaker``'s and the global listeners of state changes about ``change``."""
    old, new = change.old, change.new
    cause: str | None = None
    told = [*breaker._on_change, *((hook, wants) for _, hook, wants in tuple(global_listeners))]
    for hook, wants_cause in told:
        try:
            if wants_cause:
                if cause is None:
                    cause = _cause(change, breaker._machine.settings, breaker._slow)
                hook(breaker, old, new, cause=cause)
            else:
                hook(breaker, old, new)
        except Exception:
            _logger.exception("breaker listener %r failed in on_state_change", hook)


def _cause(change: Change, settings: MachineSettings, slow: float | None) -> str:
    """What made the machine make ``change``, in words (never raises)."""
    try:
        return describe(change, settings, slow)
    except Exception:  # a user's __repr__ that fails must not hide the transition
        return f"{change.old} -> {change.new}"


def describe(change: Change, settings: MachineSettings, slow: float | None) -> str:
    """What made the machine make ``change``, in words."""
    old, new, kind, detail, timeout, judged = change
    if kind == MANUAL:
        return str(detail)
    if new is HALF_OPEN and old is OPEN:
        return f"recovery timeout elapsed ({timeout:g}s)"
    if old is HALF_OPEN and new is not OPEN:
        threshold = settings.success_threshold
        return f"trial succeeded ({threshold}/{threshold})"
    if kind == ERROR:
        what = _short.repr(detail)
    elif kind == SLOW:
        what = f"slow call {detail:.3g}s > {slow:g}s"
    elif kind == FLAGGED:
        what = f"failure_if result {_short.repr(detail)}"
    elif kind == SUCCESS:
        what = "a success"
    else:
        return f"{old} -> {new}"
    if old is HALF_OPEN:
        return f"trial failed: {what}"
    if kind == ERROR:
        what = f"failure: {what}"
    rate = settings.failure_rate
    if rate is None or judged is None:
        return f"{what} ({settings.failure_threshold}/{settings.failure_threshold} in a row)"
    failed, total = judged
    verdict = f"failure rate {failed / total:.0%} >= {rate:.0%} over {total} calls"
    return f"{verdict} after {what}" if kind == SUCCESS else f"{what} ({verdict})"


def settle(breaker: CircuitBreaker, old: CircuitState, kind: int, detail: Any = None) -> None:
    """After a change to the machine, under the lock: refresh the gate, queue a transition.

    ``kind`` (one of the ``TIME``... constants) and ``detail`` say what changed it. The
    transition is delivered by `deliver()` once the lock is released; the facts its
    cause is told from are taken now, while they are still true.
    """
    machine = breaker._machine
    cell = breaker._cell
    # A cell kept elsewhere takes the fast path only if it says it may (see fast_path).
    cell.clean = machine.clean if cell.fast_path else None
    new = machine.state
    if new is not old and (breaker._on_change or global_listeners):
        policy = machine.policy
        judged = (policy.total_failed, policy.total) if type(policy) is FailureRateWindow else None
        cell.outbox.append((breaker, Change(old, new, kind, detail, machine.timeout, judged)))


def deliver(breaker: CircuitBreaker) -> None:
    """Tell listeners the queued transitions, unless another thread is already at it.

    Call it after releasing the lock. Deliveries of one state run one at a time and in
    order: a thread that finds another delivering leaves its transitions to that one,
    which goes on until the queue is empty. The flag and the queue are read together
    under the lock, so no transition is left behind.
    """
    cell = breaker._cell
    lock = breaker._lock
    outbox = cell.outbox
    while True:
        with lock:
            if cell.delivering or not outbox:
                return
            owner, change = outbox.popleft()
            cell.delivering = True
        try:
            announce(owner, change)
        finally:
            # Even if a listener raised SystemExit: later transitions must not wait forever.
            cell.delivering = False
