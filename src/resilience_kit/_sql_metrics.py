"""The query monitors' figures for the exporters: one set of series per engine.

Statements, slow statements, errors, a duration histogram and the pool, labelled by engine
only: never a statement or its fingerprint (a thousand statements would be a thousand series,
and statement text is no label). The engine label is the engine's ``logging_name`` when you
gave it one (``create_engine(url, logging_name="orders")``), else ``backend://host:port/db``
from its URL (never the user, the password or the query string).

Everything is read through the monitors' public API: `stats()` (totals and the pool, whose
`max_connections` is the saturation gauge's denominator) and `duration_histogram()` (a
cumulative histogram over Prometheus-style bounds, built from the monitor's finer one).
"""

from __future__ import annotations

import sys
from typing import Any

from resilience_kit._metrics import Histogram, MetricFamily

__all__ = ["sql_families"]


def _engine_label(engine: Any) -> str:
    sync_engine = getattr(engine, "sync_engine", engine)
    name = getattr(sync_engine, "logging_name", None)
    if name:
        return str(name)
    url = sync_engine.url
    host = url.host or ""
    port = f":{url.port}" if url.port else ""
    return f"{url.get_backend_name()}://{host}{port}/{url.database or ''}"


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
        histogram = monitor.duration_histogram()
        buckets = tuple((bound, float(count)) for bound, count in histogram.buckets)
        durations.add(Histogram(buckets, histogram.sum, float(histogram.count)), label)
        pool = stats.pool
        if pool is not None:
            if pool.checked_out is not None:
                checked_out.add(float(pool.checked_out), label)
            if pool.max_connections is not None:
                capacity.add(float(pool.max_connections), label)
            waited.add(pool.wait_time, label)
            timeouts.add(float(pool.timeouts), label)
    for family in families:
        family.samples = _summed(family.samples)
    return families


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
