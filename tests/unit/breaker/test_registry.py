"""The process-wide registry: unique names, weak references, deliberate sharing."""

from __future__ import annotations

import gc

import pytest

import resilience_kit
from resilience_kit import (
    CircuitBreaker,
    CircuitState,
    ConfigurationError,
    MemoryStorage,
    breakers,
    get_breaker,
)
from resilience_kit.testing import FakeClock


def test_live_breakers_are_found_by_name() -> None:
    payments = CircuitBreaker("payments")
    assert get_breaker("payments") is payments
    assert breakers()["payments"] is payments
    assert resilience_kit.get_breaker is get_breaker


def test_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no live circuit breaker is named 'nope'"):
        get_breaker("nope")


def test_a_second_live_breaker_with_a_name_is_an_error() -> None:
    first = CircuitBreaker("dup")
    with pytest.raises(ConfigurationError, match="name must be unique among live breakers"):
        CircuitBreaker("dup")
    assert get_breaker("dup") is first


def test_a_collected_breaker_frees_its_name() -> None:
    CircuitBreaker("ephemeral")
    gc.collect()
    assert "ephemeral" not in breakers()
    CircuitBreaker("ephemeral")


def test_unregister_frees_the_name_and_the_breaker_keeps_working() -> None:
    old = CircuitBreaker("release")
    old.unregister()
    assert "release" not in breakers()
    new = CircuitBreaker("release")
    assert get_breaker("release") is new
    assert old.call(lambda: 1) == 1
    old.unregister()  # twice is harmless, and does not remove the new one
    assert get_breaker("release") is new


def test_shared_breakers_share_one_circuit_and_totals(clock: FakeClock) -> None:
    storage = MemoryStorage()
    reader = CircuitBreaker.shared("db", storage=storage, failure_threshold=2)
    writer = CircuitBreaker.shared(
        "db", storage=storage, failure_threshold=2, fallback=lambda *a: "queued"
    )
    with pytest.raises(ValueError, match="invalid literal"):
        reader.call(int, "x")
    assert writer.call(int, "y") == "queued"  # the second failure, through the other one
    assert reader.state is writer.state is CircuitState.OPEN
    assert reader.stats().total_failures == writer.stats().total_failures == 2
    assert get_breaker("db") is reader


def test_shared_without_storage_shares_process_memory(clock: FakeClock) -> None:
    one = CircuitBreaker.shared("cache")
    two = CircuitBreaker.shared("cache")
    one.force_open()
    assert two.state is CircuitState.FORCED_OPEN


def test_shared_settings_must_match(clock: FakeClock) -> None:
    storage = MemoryStorage()
    keep = CircuitBreaker.shared("svc", storage=storage, failure_threshold=2)
    with pytest.raises(ConfigurationError) as caught:
        CircuitBreaker.shared("svc", storage=storage, failure_threshold=3, window=5)
    assert str(caught.value) == (
        "settings must match the breaker 'svc' already sharing this storage, got "
        "failure_threshold=3 (it has 2), window=5.0 (it has 60.0)"
    )
    assert (caught.value.parameter, caught.value.value) == ("failure_threshold", 3)
    assert keep.name == "svc"


def test_shared_does_not_take_over_a_private_name() -> None:
    private = CircuitBreaker("mine")
    with pytest.raises(ConfigurationError, match="unique"):
        CircuitBreaker.shared("mine")
    other = CircuitBreaker.shared("theirs", storage=MemoryStorage())
    with pytest.raises(ConfigurationError, match="unique"):
        CircuitBreaker.shared("theirs", storage=MemoryStorage())
    with pytest.raises(ConfigurationError, match="unique"):
        CircuitBreaker("theirs")
    assert (private.name, other.name) == ("mine", "theirs")


def test_shared_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match="unexpected arguments"):
        CircuitBreaker.shared("typo", failure_treshold=3)


def test_a_storage_cell_is_freed_with_its_last_breaker() -> None:
    storage = MemoryStorage()
    breaker = CircuitBreaker.shared("short", storage=storage, failure_threshold=2)
    breaker.force_open()
    del breaker
    gc.collect()
    fresh = CircuitBreaker.shared("short", storage=storage, failure_threshold=3)
    assert fresh.state is CircuitState.CLOSED


def test_a_storage_whose_cell_builds_its_own_machine_still_counts_rate_successes() -> None:
    # A storage may build its cells' machines without the cell's success counter; the rate
    # window then follows the cell's, so the totals and the window agree.
    from resilience_kit.breaker._machine import Machine, MachineSettings
    from resilience_kit.breaker.storage import BreakerCell

    class OwnMachineCell(BreakerCell):
        def __init__(self, settings: MachineSettings) -> None:
            super().__init__(settings)
            self.machine = Machine(settings)

    class OwnMachineStorage:
        def cell(self, name: str, settings: MachineSettings) -> BreakerCell:
            return OwnMachineCell(settings)

    breaker = CircuitBreaker(
        "own-machine", failure_rate=0.5, minimum_calls=100, storage=OwnMachineStorage()
    )
    for _ in range(3):
        breaker.call(lambda: None)
    with pytest.raises(ValueError, match="invalid literal"):
        breaker.call(int, "x")
    stats = breaker.stats()
    assert (stats.total_successes, stats.failure_rate) == (3, 0.25)
