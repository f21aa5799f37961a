"""The query monitors' figures for the exporters: one set of series per engine.

Statements, slow statements, errors, a duration histogram and the pool, labelled by engine
only: never a statement or its fingerprint (a thousand statements would be a thousand series,
and statement text is no label). The engine label is the engine's ``logging_name`` when you
gave it one (``create_engine(url, logging_name="orders")``), else ``backend://host:port/db``
from its URL (never the user, the password or the query string).

The histogram's buckets are Prometheus-style bounds over the monitor's own log-scale
histogram (8 buckets per doubling): a monitor bucket that straddles a bound is counted in the
next bound up, so a count is at most one monitor bucket (about 9 % of the duration) late.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from typing import Any

from resilience_kit._metrics import Histogram, MetricFamily

__all__ = ["BUCKETS", "sql_families"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""The histogram's upper bounds in seconds (``+Inf`` follows)."""

_coarse_of: list[int] | None = None


def _coarse_index() -> list[int]:
    """Monitor bucket index -> index in BUCKETS (len(BUCKETS) for +Inf), built once."""
    global _coarse_of  # noqa: PLW0603 - a cache of a pure function of the monitor's bounds
    if _coarse_of is None:
        from resilience_kit.sql._stats import _BOUNDS

        # Monitor bucket i holds durations in [_BOUNDS[i-1], _BOUNDS[i]); the last one, past
        # every bound, only fits +Inf.
        _coarse_of = [bisect_left(BUCKETS, upper) for upper in _BOUNDS] + [len(BUCKETS)]
    return _coarse_of


def _engine_label(engine: Any) -> str:
    sync_engine = getattr(engine, "sync_engine", engine)
    name = getattr(sync_engine, "logging_name", None)
    if name:
        return str(name)
    url = sync_engine.url
    host = url.host or ""
    port = f":{url.port}" if url.port else ""
    return f"{url.get_backend_name()}://{host}{port}/{url.database or ''}"


def _histogram(monitor: Any) -> tuple[list[float], float, float]:
    """Cumulative-ready counts per BUCKETS (+Inf last), the sum and the count of durations."""
    coarse_of = _coarse_index()
    counts = [0.0] * (len(BUCKETS) + 1)
    hub = monitor.hub
    hub.fold()
    with hub.lock:
        table = monitor._table
        total, calls = table.total, table.calls
        for row in table.every_row():
            for index, count in row.buckets.items():
                counts[coarse_of[min(index, len(coarse_of) - 1)]] += count
    return counts, total, float(calls)


def sql_families() -> list[MetricFamily]:
    """Statements, slow statements, errors, durations and the pool of every monitored engine."""
    labels = ("engine",)
    queries = MetricFamily("db_queries", "counter", "Statements executed.", labels)
    slow = MetricFamily(
        "db_slow_queries", "counter", "Statements slower than the monitor's threshold.", labels
    )
    errors = MetricFamily("db_query_errors", "counter", "Statements that raised.", labels)
    durations = MetricFamily(
        "db_query_duration_seconds", "histogram", "How long statements took.", labels
    )
    checked_out = MetricFamily(
        "db_pool_checked_out", "gauge", "Connections in use now.", labels, merge="sum"
    )
    capacity = MetricFamily(
        "db_pool_max_connections",
        "gauge",
        "Connections the pool may hand out at once (size plus overflow).",
        labels,
        merge="sum",
    )
    waited = MetricFamily(
        "db_pool_wait_seconds", "counter", "Time spent waiting for a free connection.", labels
    )
    timeouts = MetricFamily(
        "db_pool_timeouts", "counter", "Checkouts that gave up waiting for a connection.", labels
    )
    families = [queries, slow, errors, durations, checked_out, capacity, waited, timeouts]
    module = sys.modules.get("resilience_kit.sql")
    if module is None:  # no monitor without the module: do not import it (and SQLAlchemy)
        return families
    seen: set[int] = set()
    for monitor in module.monitors():
        engine = getattr(monitor.engine, "sync_engine", monitor.engine)
        if id(engine) in seen:
            continue  # several monitors on one engine count the same statements
        seen.add(id(engine))
        label = _engine_label(engine)
        stats = monitor.stats()
        queries.add(float(stats.total_queries), label)
        slow.add(float(stats.slow_queries), label)
        errors.add(float(stats.errors), label)
        counts, total, calls = _histogram(monitor)
        running, buckets = 0.0, []
        for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
            running += count
            buckets.append((bound, running))
        durations.add(Histogram(tuple(buckets), total, calls), label)
        pool = stats.pool
        if pool is not None:
            if pool.checked_out is not None:
                checked_out.add(float(pool.checked_out), label)
            limit = _max_connections(monitor)
            if limit is not None:
                capacity.add(float(limit), label)
            waited.add(pool.wait_time, label)
            timeouts.add(float(pool.timeouts), label)
    for family in families:
        family.samples = _summed(family.samples)
    return families


def _max_connections(monitor: Any) -> int | None:
    """size + max_overflow of a QueuePool; None for a pool without a fixed limit."""
    pool = monitor.hub.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", None)
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return None
    return int(size()) + overflow


def _summed(samples: list[tuple[tuple[str, ...], Any]]) -> list[tuple[tuple[str, ...], Any]]:
    """Two engines with one label (the same URL twice) become one series: their sum."""
    merged: dict[tuple[str, ...], Any] = {}
    for labels, value in samples:
        current = merged.get(labels)
        if current is None:
            merged[labels] = value
        elif isinstance(value, Histogram):
            pairs = zip(current.buckets, value.buckets, strict=True)
            buckets = tuple((bound, a + b) for (bound, a), (_, b) in pairs)
            merged[labels] = Histogram(
                buckets, current.sum + value.sum, current.count + value.count
            )
        else:
            merged[labels] = current + value
    return list(merged.items())
