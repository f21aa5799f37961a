"""100k statements holding 1M distinct literals: rows stay at max_statements, memory flat."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from typing import Any

import pytest

from resilience_kit.sql import OTHER, _hub, install_query_monitor

sa = pytest.importorskip("sqlalchemy")

STATEMENTS = 100_000
LITERALS_PER_STATEMENT = 10  # 1M distinct literal values in all
SHAPES = 5_000  # distinct fingerprints, far more than max_statements
MAX_STATEMENTS = 200


def statement(i: int) -> str:
    base = i * LITERALS_PER_STATEMENT
    values = ", ".join(str(base + k) for k in range(LITERALS_PER_STATEMENT - 1))
    return f"SELECT {base + 9} AS c{i % SHAPES} WHERE -1 IN ({values})"


def monitor_memory() -> int:
    """Bytes held by allocations made in the monitor's own code.

    tracemalloc traces the whole process; threads left by earlier tests (a cache's pub/sub
    listener, say) allocate meanwhile, so only the monitor's allocations are counted.
    """
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(inclusive=True, filename_pattern="*resilience_kit*sql*")]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


@pytest.fixture
def steady_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement takes exactly 10 µs on the monitor's timer.

    Each row keeps a latency histogram of up to 241 buckets, filled as durations show up: on a
    loaded machine the real durations spread over more buckets as the run goes on, so the held
    memory creeps up to that (bounded) size and would hide, or fake, a leak. A steady timer keeps
    one bucket per row, so what remains to grow is exactly what a leak would add.
    """
    ticks = itertools.count()
    monkeypatch.setattr(_hub, "perf_counter", lambda: next(ticks) * 5e-6)


@pytest.mark.slow
@pytest.mark.usefixtures("steady_timer")
def test_rows_and_memory_stay_bounded(engine: Any) -> None:
    monitor = install_query_monitor(engine, max_statements=MAX_STATEMENTS, slow_threshold=60)
    checkpoints: list[int] = []
    with engine.connect() as connection:
        for i in range(20_000):  # warm-up: every cache reaches its bound
            connection.exec_driver_sql(statement(i))
        tracemalloc.start()
        try:
            for i in range(20_000, STATEMENTS):
                connection.exec_driver_sql(statement(i))
                if i % 20_000 == 19_999:
                    monitor.stats()
                    gc.collect()
                    checkpoints.append(monitor_memory())
        finally:
            tracemalloc.stop()
    stats = monitor.stats()
    assert stats.total_queries == STATEMENTS
    assert stats.statements <= MAX_STATEMENTS
    assert stats.evictions > 0
    rows = monitor.top(MAX_STATEMENTS + 1)
    assert len(rows) == stats.statements + 1  # + the "other" row
    assert sum(row.calls for row in rows) == STATEMENTS
    assert any(row.fingerprint == OTHER for row in rows)
    # Each 20k-statement stretch brings 200k new literals; the memory held after each stays
    # level (a leak of even 2 bytes per statement would add 40 KB per stretch, 120 KB in all).
    assert len(checkpoints) == 4
    assert max(checkpoints) - min(checkpoints) < 64 * 1024, checkpoints
    monitor.remove()
