"""HALF_OPEN across the fleet: trial leases in Redis, released by outcome or by expiry."""

from __future__ import annotations

import threading

import pytest
from shared_support import converged, fail, succeed

from polling import until
from resilience_kit import CircuitOpenError, CircuitState
from resilience_kit.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def fleet(storage_factory, process, clock):
    """Make ``n`` processes on the fake clock (Redis times follow it too)."""

    def make(n: int, **config):
        config = {"failure_threshold": 1, "recovery_timeout": 10, **config}
        return [
            process(storage=storage_factory(clock=clock, trial_lease=5), clock=clock, **config)
            for _ in range(n)
        ]

    return make


def start_trial(breaker, started: threading.Event, finish: threading.Event, results: list):
    """Run a trial call in a thread that holds it until ``finish`` is set."""

    def trial() -> str:
        started.set()
        finish.wait(5)
        return "trial"

    def run() -> None:
        try:
            results.append(breaker.call(trial))
        except CircuitOpenError:
            results.append("rejected")
            started.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_fleet_runs_at_most_half_open_max_calls_trials_at_once(fleet, clock) -> None:
    breakers = fleet(4, half_open_max_calls=2)
    fail(breakers[0])
    assert converged(breakers, CircuitState.OPEN)
    clock.advance(10)
    finish = threading.Event()
    results: list[str] = []
    threads = []
    for breaker in breakers:
        started = threading.Event()
        threads.append(start_trial(breaker, started, finish, results))
        assert started.wait(5)
    assert until(lambda: results.count("rejected") == 2), results
    finish.set()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == ["rejected", "rejected", "trial", "trial"]
    # success_threshold 1: the first trial closed it, for everyone
    assert until(lambda: all(b.state is CircuitState.CLOSED for b in breakers))


def test_a_trial_whose_process_vanished_frees_its_slot_when_the_lease_expires(fleet, clock) -> None:
    crashed, survivor = fleet(2)
    fail(crashed)
    assert converged([survivor], CircuitState.OPEN)
    clock.advance(10)
    crashed._cell.pull(clock.monotonic())  # takes the only lease... and never reports back
    assert crashed._machine.admit(clock.monotonic()) is crashed._machine.period  # a trial
    with pytest.raises(CircuitOpenError):
        survivor.call(lambda: None)
    clock.advance(5)  # trial_lease
    succeed(survivor)
    assert survivor.state is CircuitState.CLOSED


def test_a_failed_trial_reopens_with_the_doubled_timeout_everywhere(fleet, clock) -> None:
    first, second = fleet(2, max_recovery_timeout=40)
    fail(first)
    assert converged([second], CircuitState.OPEN)
    clock.advance(10)
    fail(second)  # the trial
    assert second.state is CircuitState.OPEN
    assert second.stats().retry_after == pytest.approx(20)
    assert until(lambda: first.stats().retry_after == pytest.approx(20))


def test_success_threshold_counts_trials_from_every_process(fleet, clock) -> None:
    first, second = fleet(2, success_threshold=2, half_open_max_calls=2)
    fail(first)
    assert converged([second], CircuitState.OPEN)
    clock.advance(10)
    succeed(first)
    assert first.state is CircuitState.HALF_OPEN
    succeed(second)
    assert second.state is CircuitState.CLOSED
    assert until(lambda: first.state is CircuitState.CLOSED)


def test_an_uncounted_error_gives_the_slot_back(fleet, clock) -> None:
    first, second = fleet(2, ignore=(KeyError,))

    def ignored() -> None:
        raise KeyError("not a failure")

    fail(first)
    assert converged([second], CircuitState.OPEN)
    clock.advance(10)
    with pytest.raises(KeyError):
        first.call(ignored)
    succeed(second)  # the slot is free again at once, no lease expiry needed
    assert second.state is CircuitState.CLOSED
