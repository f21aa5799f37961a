"""A breaker's manual control: the changes ``force_open``, ``disable``, ``reset`` and the test
hooks make, each one transition for listeners, caused by ``MANUAL``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from resilience_kit.breaker._listeners import MANUAL, deliver, settle
from resilience_kit.breaker._machine import CircuitState, Machine
from resilience_kit.breaker.storage import read_count

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker

__all__ = ["control", "force_state", "fresh", "reset_totals"]


def force_state(breaker: CircuitBreaker, state: CircuitState) -> None:
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
    now = breaker._monotonic()
    change = fresh(breaker, lambda machine: machine.force(target, now))
    control(breaker, change, f"force_state({target.value!r})")


def fresh(breaker: CircuitBreaker, change: Callable[[Machine], None]) -> Callable[[Machine], None]:
    """``change``, after forgetting the failures the state was built on (as ``reset``)."""
    cell = breaker._cell

    def then_forget(machine: Machine) -> None:
        change(machine)
        cell.success_mark = read_count(cell.successes)
        cell.last_failure = None

    return then_forget


def reset_totals(breaker: CircuitBreaker) -> None:
    """Count the lifetime totals (``total_*``) from zero again (for tests).

    Private but stable: the pytest plugin's ``breakers`` fixture uses it.
    [`reset()`][resilience_kit.CircuitBreaker.reset] keeps the totals on purpose (monitoring
    expects counters never to go down); a test wants a breaker as fresh as a new one. The
    counters themselves run on (decorated functions hold them), so this moves the zero the
    snapshot subtracts.
    """
    cell = breaker._cell
    with breaker._lock:
        cell.zeros = (
            read_count(cell.successes),
            read_count(cell.failures),
            read_count(cell.rejected),
            read_count(cell.unrecorded),
        )


def control(breaker: CircuitBreaker, change: Callable[[Machine], None], cause: str) -> None:
    machine = breaker._machine
    with breaker._lock:
        old = machine.state
        change(machine)
        settle(breaker, old, MANUAL, cause)
    if breaker._cell.outbox:
        deliver(breaker)
    if breaker._cell.remote:
        breaker._cell.push(breaker._monotonic())
