"""Listeners of breakers outside the name registry hear what happens in Redis too.

A breaker made with ``unregister()`` after it (as the ``process`` fixture does to simulate
processes, and test fixtures do to free a name) still uses its cell; the transitions other
processes make, and the storage's health edges, must reach its listeners.
"""

from __future__ import annotations

import gc
import threading
import weakref

from shared_support import fail, succeed

from doubles import Heard, run_together
from polling import until
from resilience_kit import CircuitBreaker, CircuitState

OPEN = CircuitState.OPEN


def test_an_unregistered_breaker_hears_transitions_made_elsewhere(process) -> None:
    heard = Heard()
    watcher = process(failure_threshold=1, listeners=[heard])
    elsewhere = process(failure_threshold=1)
    succeed(watcher)  # its view is read: the next change it learns of is the transition
    fail(elsewhere)
    assert until(lambda: heard.events == ["CLOSED->OPEN: shared state changed in Redis"])
    assert watcher._machine.state is OPEN
    elsewhere.reset()
    assert until(lambda: len(heard.events) == 2)
    assert heard.events[1] == "OPEN->CLOSED: shared state changed in Redis"


def test_an_unregistered_breaker_hears_a_transition_found_by_a_resync(process) -> None:
    """Its storage's subscriber is stopped, so the transition is learnt by a resync (the
    subscriber thread's periodic read, run here by hand)."""
    heard = Heard()
    watcher = process(failure_threshold=1, listeners=[heard])
    storage = watcher.storage
    storage.close()
    succeed(watcher)
    fail(process(failure_threshold=1))
    assert watcher._machine.state is CircuitState.CLOSED  # nobody told it
    storage.resync(storage.client)
    assert watcher._machine.state is OPEN
    assert heard.events == ["CLOSED->OPEN: shared state changed in Redis"]


def test_an_unregistered_breaker_hears_the_storage_health_edges(storage_factory, server) -> None:
    heard = Heard()
    breaker = CircuitBreaker("dep", storage=storage_factory(), listeners=[heard])
    breaker.unregister()
    succeed(breaker)
    server.connected = False
    fail(breaker)
    server.connected = True
    assert until(lambda: heard.events == ["degraded", "recovered"])
    assert [type(error).__name__ for error in heard.errors] == ["ConnectionError"]


def test_every_breaker_of_a_cell_hears_once_when_made_from_many_threads(
    process, storage_factory
) -> None:
    """Breakers attached to one cell from 8 threads at once (registered or not): none is
    lost, and each hears the transition exactly once."""
    elsewhere = process(failure_threshold=1)  # made first: the shared ones take the name
    storage = storage_factory()
    made: list[CircuitBreaker] = []
    listeners: list[Heard] = []
    guard = threading.Lock()

    def make(index: int) -> None:
        for number in range(50):
            heard = Heard()
            breaker = CircuitBreaker.shared(
                "dep", failure_threshold=1, storage=storage, listeners=[heard]
            )
            if (index + number) % 2:
                breaker.unregister()
            with guard:
                made.append(breaker)
                listeners.append(heard)

    run_together(8, make)
    assert len(made) == 400
    succeed(made[0])
    fail(elsewhere)
    expected = ["CLOSED->OPEN: shared state changed in Redis"]
    assert until(lambda: all(heard.events == expected for heard in listeners))
    cell = made[0]._cell
    assert {id(breaker) for breaker in cell.breakers()} == {id(breaker) for breaker in made}
    for breaker in made:
        breaker.unregister()


def test_a_cell_does_not_keep_a_dropped_breaker_alive(process, storage_factory) -> None:
    elsewhere = process(failure_threshold=1)
    storage = storage_factory()
    kept_heard, dropped_heard = Heard(), Heard()
    kept = CircuitBreaker.shared(
        "dep", failure_threshold=1, storage=storage, listeners=[kept_heard]
    )
    dropped = CircuitBreaker.shared(
        "dep", failure_threshold=1, storage=storage, listeners=[dropped_heard]
    )
    dropped.unregister()
    cell = kept._cell
    gone = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert gone() is None
    assert cell.breakers() == [kept]
    # The next breaker made on the cell drops the dead reference.
    third = CircuitBreaker.shared("dep", failure_threshold=1, storage=storage)
    assert len(cell.users) == 2
    succeed(kept)
    fail(elsewhere)
    assert until(lambda: kept_heard.events == ["CLOSED->OPEN: shared state changed in Redis"])
    assert dropped_heard.events == []
    kept.unregister()
    third.unregister()
