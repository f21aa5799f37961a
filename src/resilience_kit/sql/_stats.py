"""Per-fingerprint statistics in bounded memory, and the frozen snapshots users read.

Durations go into a log-scale histogram (8 buckets per doubling, 1 µs to ~17 min, so a
percentile is within about 5% of the true value) kept as a sparse dict: a fingerprint costs a
few hundred bytes whatever its number of calls. At most ``max_statements`` fingerprints have
rows of their own; when a new one arrives at a full table, the tenth with the least total time
is folded into the ``other`` row, so totals stay exact while memory stays bounded.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

from resilience_kit.errors import ConfigurationError

__all__ = [
    "DURATION_BOUNDS",
    "OTHER",
    "DurationHistogram",
    "PoolStats",
    "QueryStats",
    "StatementStats",
    "StatementTable",
    "check_bounds",
    "duration_histogram",
]

OTHER = "other"
"""The fingerprint of the row that holds every statement evicted from the table."""

_PER_OCTAVE = 8
_LOWEST = 2.0**-20  # ~0.95 µs
_BOUNDS: list[float] = [
    _LOWEST * math.pow(2.0, i / _PER_OCTAVE) for i in range(30 * _PER_OCTAVE + 1)
]


DURATION_BOUNDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
"""The default upper bounds of
[QueryMonitor.duration_histogram][resilience_kit.sql.QueryMonitor.duration_histogram], in
seconds (1 ms to 10 s; ``+Inf`` follows)."""


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
class DurationHistogram:
    """How long statements took, as a cumulative histogram (the shape Prometheus exports).

    `buckets` holds `(upper_bound, count)` pairs in ascending order, the last bound `inf`:
    `count` is the number of statements that took at most `upper_bound` seconds. The monitor
    keeps a finer log-scale histogram; a fine bucket that straddles a bound is counted at the
    next bound up, so a count is late by at most one fine bucket (about 9 % of the duration),
    never early. `sum` is the exact total time in seconds, `count` the number of statements.
    """

    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


@dataclass(frozen=True)
class PoolStats:
    """The connection pool of the monitored engine.

    `size`, `checked_out` and `overflow` are read from the pool when the snapshot is taken
    (None where the pool class has no such notion, e.g. `NullPool`), and so is
    `max_connections`, the connections the pool may hand out at once (`pool_size` plus
    `max_overflow`; None for a pool without a fixed limit); the rest counts since the
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
    max_connections: int | None = None

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


def check_bounds(bounds: Iterable[float]) -> tuple[float, ...]:
    """``bounds`` as a tuple, if they are finite, positive and strictly ascending."""
    values = tuple(bounds)
    valid = bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in values
    )
    if not valid or any(b <= a for a, b in pairwise(values)):
        raise ConfigurationError(
            "bounds must be one or more finite numbers > 0 in strictly ascending order, "
            f"got {values!r}",
            parameter="bounds",
            value=values,
        )
    return tuple(float(v) for v in values)


@lru_cache(maxsize=16)
def _coarse_index(bounds: tuple[float, ...]) -> list[int]:
    """Fine bucket index -> index in ``bounds`` (``len(bounds)`` for +Inf).

    Fine bucket i holds durations in [_BOUNDS[i-1], _BOUNDS[i]); it is counted at the first
    bound at or above its upper edge. The last fine bucket, past every edge, only fits +Inf.
    """
    return [bisect_left(bounds, upper) for upper in _BOUNDS] + [len(bounds)]


def duration_histogram(rows: Iterable[_Row], bounds: Sequence[float]) -> DurationHistogram:
    """Fold the fine histograms of ``rows`` into one cumulative histogram over ``bounds``."""
    bounds = tuple(bounds)
    coarse_of = _coarse_index(bounds)
    last = len(coarse_of) - 1
    counts = [0] * (len(bounds) + 1)
    total, calls = 0.0, 0
    for row in rows:
        total += row.total
        calls += row.calls
        for index, count in row.buckets.items():
            counts[coarse_of[min(index, last)]] += count
    running, buckets = 0, []
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        running += count
        buckets.append((bound, running))
    return DurationHistogram(tuple(buckets), total, calls)
