"""Per-fingerprint statistics in bounded memory, and the frozen snapshots users read.

Durations go into a log-scale histogram (8 buckets per doubling, 1 µs to ~17 min, so a
percentile is within about 5% of the true value) kept as a sparse dict: a fingerprint costs a
few hundred bytes whatever its number of calls. At most ``max_statements`` fingerprints have
rows of their own; when a new one arrives at a full table, the tenth with the least total time
is folded into the ``other`` row, so totals stay exact while memory stays bounded.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OTHER", "PoolStats", "QueryStats", "StatementStats", "StatementTable"]

OTHER = "other"
"""The fingerprint of the row that holds every statement evicted from the table."""

_PER_OCTAVE = 8
_LOWEST = 2.0**-20  # ~0.95 µs
_BOUNDS: list[float] = [
    _LOWEST * math.pow(2.0, i / _PER_OCTAVE) for i in range(30 * _PER_OCTAVE + 1)
]


def _bucket_value(index: int) -> float:
    """A representative duration of bucket ``index`` (the geometric middle of its bounds)."""
    if index == 0:
        return _LOWEST
    if index >= len(_BOUNDS):
        return _BOUNDS[-1]
    return math.sqrt(_BOUNDS[index - 1] * _BOUNDS[index])


@dataclass(frozen=True)
class StatementStats:
    """What one fingerprint has cost since the monitor was installed or last reset.

    Times are in seconds; `p50`, `p95` and `p99` come from a bounded histogram (within about
    5%, and never outside `min_time`..`max_time`). `rows` counts the rows the driver reported
    (affected rows, or fetched rows where the driver knows them before they are read).
    `plan` is the `EXPLAIN (FORMAT JSON)` output of a slow execution when `explain_slow` is on.
    """

    fingerprint: str
    calls: int
    rows: int
    errors: int
    slow: int
    total_time: float
    mean_time: float
    min_time: float
    max_time: float
    p50: float
    p95: float
    p99: float
    plan: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, times rounded to the microsecond."""
        out: dict[str, Any] = {"fingerprint": self.fingerprint, "calls": self.calls}
        out.update(rows=self.rows, errors=self.errors, slow=self.slow)
        for name in ("total_time", "mean_time", "min_time", "max_time", "p50", "p95", "p99"):
            out[name] = round(getattr(self, name), 6)
        if self.plan is not None:
            out["plan"] = self.plan
        return out


@dataclass(frozen=True)
class PoolStats:
    """The connection pool of the monitored engine.

    `size`, `checked_out` and `overflow` are read from the pool when the snapshot is taken
    (None where the pool class has no such notion, e.g. `NullPool`); the rest counts since the
    monitor was installed or reset: `checkouts` (connections handed out), `wait_time` and
    `max_wait` (seconds spent waiting for a free connection, connection set-up excluded) and
    `timeouts` (checkouts that gave up after `pool_timeout`).
    """

    pool: str
    size: int | None
    checked_out: int | None
    overflow: int | None
    checkouts: int
    wait_time: float
    max_wait: float
    timeouts: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out = dict(self.__dict__)
        out["wait_time"] = round(self.wait_time, 6)
        out["max_wait"] = round(self.max_wait, 6)
        return out


@dataclass(frozen=True)
class QueryStats:
    """Totals over every statement, with the original `/admin/db_metrics` fields first.

    `slow_query_percentage` is in percent (0.79 means 0.79%); `avg_time` is `total_time /
    total_queries`. `statements` is the number of fingerprints with a row of their own,
    `evictions` how many were folded into the `other` row, `n_plus_one` how many N+1 patterns
    scopes flagged.
    """

    total_queries: int
    slow_queries: int
    errors: int
    total_time: float
    avg_time: float
    slow_query_percentage: float
    rows: int = 0
    statements: int = 0
    evictions: int = 0
    n_plus_one: int = 0
    pool: PoolStats | None = field(default=None)


class _Row:
    """The mutable accumulator behind one [StatementStats][resilience_kit.sql.StatementStats]."""

    __slots__ = ("buckets", "calls", "errors", "fingerprint", "max", "min", "rows", "slow", "total")

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.calls = self.rows = self.errors = self.slow = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0
        self.buckets: dict[int, int] = {}

    def merge(self, other: _Row) -> None:
        self.calls += other.calls
        self.rows += other.rows
        self.errors += other.errors
        self.slow += other.slow
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        buckets = self.buckets
        for index, count in other.buckets.items():
            buckets[index] = buckets.get(index, 0) + count

    def percentile(self, fraction: float) -> float:
        if not self.calls:
            return 0.0
        rank = fraction * self.calls
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(max(_bucket_value(index), self.min), self.max)
        return self.max  # pragma: no cover - the counts always reach `calls`

    def snapshot(self, plan: Any = None) -> StatementStats:
        calls = self.calls
        return StatementStats(
            fingerprint=self.fingerprint,
            calls=calls,
            rows=self.rows,
            errors=self.errors,
            slow=self.slow,
            total_time=self.total,
            mean_time=self.total / calls if calls else 0.0,
            min_time=self.min if calls else 0.0,
            max_time=self.max,
            p50=self.percentile(0.50),
            p95=self.percentile(0.95),
            p99=self.percentile(0.99),
            plan=plan,
        )


class StatementTable:
    """The rows of one monitor; only the monitor's fold (under its hub's lock) writes to it."""

    __slots__ = (
        "calls",
        "errors",
        "evictions",
        "max_statements",
        "other",
        "rows",
        "slow",
        "statements",
        "total",
    )

    def __init__(self, max_statements: int) -> None:
        self.max_statements = max_statements
        self.statements: dict[str, _Row] = {}
        self.other = _Row(OTHER)
        self.evictions = 0
        self.calls = self.errors = self.slow = self.rows = 0
        self.total = 0.0

    def row(self, fingerprint: str) -> _Row:
        found = self.statements.get(fingerprint)
        if found is None:
            if len(self.statements) >= self.max_statements:
                self._evict()
            found = self.statements[fingerprint] = _Row(fingerprint)
        return found

    def _evict(self) -> None:
        count = max(1, self.max_statements // 10)
        coldest = sorted(self.statements.values(), key=lambda row: row.total)[:count]
        for row in coldest:
            self.other.merge(row)
            del self.statements[row.fingerprint]
        self.evictions += len(coldest)

    def add(self, row: _Row, durations: list[float], rows: int, errors: int, slow: int) -> None:
        """Record one batch of executions of one fingerprint."""
        row.calls += len(durations)
        spent = math.fsum(durations)
        row.total += spent
        low = min(durations)
        high = max(durations)
        row.min = min(low, row.min)
        row.max = max(high, row.max)
        row.rows += rows
        row.errors += errors
        row.slow += slow
        buckets = row.buckets
        for index in map(_bucket_of, durations):
            buckets[index] = buckets.get(index, 0) + 1
        self.calls += len(durations)
        self.total += spent
        self.rows += rows
        self.errors += errors
        self.slow += slow

    def every_row(self) -> list[_Row]:
        rows = list(self.statements.values())
        if self.other.calls:
            rows.append(self.other)
        return rows


def _bucket_of(duration: float, _bounds: list[float] = _BOUNDS) -> int:
    return bisect_right(_bounds, duration)
