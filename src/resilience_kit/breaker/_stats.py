"""What a breaker reports: the frozen [`BreakerStats`][resilience_kit.BreakerStats]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience_kit.breaker._listeners import TIME
from resilience_kit.breaker._machine import CircuitState
from resilience_kit.breaker.storage import read_count

if TYPE_CHECKING:
    from resilience_kit.breaker._breaker import CircuitBreaker
    from resilience_kit.breaker.storage import BreakerCell

__all__ = ["BreakerStats", "snapshot", "totals"]


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """A snapshot of one breaker, as
    [`CircuitBreaker.stats`][resilience_kit.CircuitBreaker.stats] returns it.

    Attributes:
        name: The breaker's name.
        state: Its state when the snapshot was taken.
        failure_count: Failures the policy holds now: consecutive failures, or failures in the
            rate window when ``failure_rate`` is set.
        consecutive_successes: Successful calls since the last recorded failure (or reset).
        total_calls: Calls that finished or were rejected (a call in progress is not counted
            yet): successes + failures + rejected + calls whose error was not counted.
        total_successes: Calls that counted as successes.
        total_failures: Calls that counted as failures.
        total_rejected: Calls rejected without running (shown as ``total_blocked`` by
            [`to_dict`][resilience_kit.CircuitBreaker.to_dict]).
        failure_rate: The share of failures in the rate window (rate policy), or among all
            recorded outcomes (consecutive policy); 0.0 before any.
        success_rate: ``total_successes / (total_successes + total_failures)``; 1.0 before any.
        opened_at: Wall-clock time (epoch seconds) it last opened, or ``None``.
        retry_after: Seconds until it admits a trial call (0.0 unless OPEN).
        last_failure: Wall-clock time of the last recorded failure, or ``None``.
        store_errors: Errors met talking to the breaker's shared store (a
            [RedisStorage][resilience_kit.RedisStorage]); always 0 in memory.
    """

    name: str
    state: CircuitState
    failure_count: int
    consecutive_successes: int
    total_calls: int
    total_successes: int
    total_failures: int
    total_rejected: int
    failure_rate: float
    success_rate: float
    opened_at: float | None
    retry_after: float
    last_failure: float | None
    store_errors: int = 0


def snapshot(breaker: CircuitBreaker) -> BreakerStats:
    """A consistent snapshot of ``breaker``'s state and totals."""
    cell = breaker._cell
    machine = breaker._machine
    clock = breaker._clock
    with breaker._lock:
        now = breaker._monotonic()
        wall = clock.wall()
        old = machine.state
        machine.poll(now)
        state = machine.state
        failure_count = machine.failure_count(now)
        window_rate = machine.failure_rate(now)
        # After the window has turned to now: the gate is judged on what it holds now.
        breaker._settle(old, TIME)
        opened_at = machine.opened_at
        retry_after = machine.retry_after(now)
        successes, failures, rejected, unrecorded = _since_zeros(cell)
        # The lifetime count success_mark was taken on: the one read above, zero added back.
        counted = successes + cell.zeros[0]
        mark = cell.success_mark
        last_failure = cell.last_failure
    if cell.outbox:
        breaker._deliver()
    recorded = successes + failures
    return BreakerStats(
        name=breaker.name,
        state=state,
        failure_count=failure_count,
        consecutive_successes=max(0, counted - mark),
        total_calls=recorded + rejected + unrecorded,
        total_successes=successes,
        total_failures=failures,
        total_rejected=rejected,
        failure_rate=window_rate
        if window_rate is not None
        else (failures / recorded if recorded else 0.0),
        success_rate=successes / recorded if recorded else 1.0,
        opened_at=None if opened_at is None else wall - (now - opened_at),
        retry_after=retry_after,
        last_failure=None if last_failure is None else wall - (now - last_failure),
        store_errors=cell.store_errors,
    )


def totals(breaker: CircuitBreaker) -> tuple[int, int, int, int]:
    """``breaker``'s successes, failures, rejections and unrecorded (ignored) calls since its
    last reset: the figures a metrics scrape reads for every breaker.

    A quarter of [snapshot][resilience_kit.breaker._stats.snapshot]'s cost: it neither turns the
    rate window nor builds a `BreakerStats`, which a scrape of a thousand breakers would pay a
    thousand times. The lock keeps the four figures and the reset's zeros consistent.
    """
    with breaker._lock:
        return _since_zeros(breaker._cell)


def _since_zeros(cell: BreakerCell) -> tuple[int, int, int, int]:
    """``cell``'s successes, failures, rejections and unrecorded calls since its totals were
    last zeroed: each counter minus what it read then.

    It takes no lock: call it under the cell's, which keeps the figures and the zeros
    consistent (a lock-free success may still land between two reads, as it may at any time).
    """
    zero_successes, zero_failures, zero_rejected, zero_unrecorded = cell.zeros
    return (
        read_count(cell.successes) - zero_successes,
        read_count(cell.failures) - zero_failures,
        read_count(cell.rejected) - zero_rejected,
        read_count(cell.unrecorded) - zero_unrecorded,
    )
