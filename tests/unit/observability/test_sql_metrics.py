"""Query monitors in the scrape: per-engine statements, slow ones, errors, durations, pool."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from resilience_kit import prometheus as rk_prometheus
from resilience_kit.sql import DURATION_BOUNDS, DurationHistogram, install_query_monitor

BOUNDS = (*DURATION_BOUNDS[2:], float("inf"))  # every bound after 0.0025 s


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    collector = rk_prometheus.register(registry=registry, sources=["sql"])
    yield registry
    rk_prometheus.unregister(collector, registry=registry)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = rk_prometheus.generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sqlite_engine(path: Path, **options: Any) -> sa.Engine:
    engine = sa.create_engine(
        f"sqlite:///{path}", poolclass=sa.QueuePool, pool_size=3, max_overflow=2, **options
    )

    @sa.event.listens_for(engine, "connect")
    def add_sleep(connection: Any, record: Any) -> None:
        connection.create_function("sleep", 1, time.sleep)

    return engine


def test_statements_slow_ones_errors_durations_and_pool(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    engine = sqlite_engine(tmp_path / "orders.db", logging_name="orders")
    monitor = install_query_monitor(engine, slow_threshold=0.015)
    try:
        with engine.connect() as connection:
            for _ in range(10):
                connection.execute(sa.text("SELECT 1"))
            connection.execute(sa.text("SELECT sleep(0.02)"))
            with pytest.raises(sa.exc.OperationalError):
                connection.execute(sa.text("SELECT nope FROM nowhere"))
            held = scrape(registry)
        samples = scrape(registry)
    finally:
        monitor.remove()
        engine.dispose()

    def value(name: str, **labels: str) -> float:
        return samples[name, tuple(sorted({"engine": "orders", **labels}.items()))]

    assert value("resilience_kit_db_queries_total") == 12
    assert value("resilience_kit_db_slow_queries_total") == 1
    assert value("resilience_kit_db_query_errors_total") == 1
    count = value("resilience_kit_db_query_duration_seconds_count")
    assert count == 12
    assert value("resilience_kit_db_query_duration_seconds_bucket", le="+Inf") == count
    assert value("resilience_kit_db_query_duration_seconds_bucket", le="0.01") == 11
    assert value("resilience_kit_db_query_duration_seconds_bucket", le="10.0") == 12
    assert 0.02 <= value("resilience_kit_db_query_duration_seconds_sum") < 0.5
    assert value("resilience_kit_db_pool_max_connections") == 5
    assert held["resilience_kit_db_pool_checked_out", (("engine", "orders"),)] == 1
    assert value("resilience_kit_db_pool_checked_out") == 0
    assert value("resilience_kit_db_pool_timeouts_total") == 0


def test_the_engine_label_is_never_a_secret_or_a_statement(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    engine = sqlite_engine(tmp_path / "shop.db")
    monitor = install_query_monitor(engine)
    twice = install_query_monitor(engine)  # a second monitor on the same engine
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1 WHERE 'password' = 's3cret'"))
        samples = scrape(registry)
    finally:
        twice.remove()
        monitor.remove()
        engine.dispose()
    engines = {
        dict(labels)["engine"]
        for name, labels in samples
        if name == "resilience_kit_db_queries_total"
    }
    label = f"sqlite:///{tmp_path / 'shop.db'}"
    assert label in engines
    assert all(engine.startswith("sqlite://") for engine in engines), "no user, no password"
    assert samples["resilience_kit_db_queries_total", (("engine", label),)] == 1, (
        "two monitors on one engine count its statements once"
    )
    assert not any("s3cret" in str(labels) for _, labels in samples)
    removed = scrape(registry)
    assert ("resilience_kit_db_queries_total", (("engine", label),)) not in removed


def test_the_scrape_reads_monitors_through_their_public_accessors(
    registry: CollectorRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sqlite_engine(tmp_path / "public.db", logging_name="public")
    monitor = install_query_monitor(engine)
    planted = DurationHistogram(((0.001, 7), (0.0025, 8), *[(b, 9) for b in BOUNDS]), 1.5, 9)
    monkeypatch.setattr(monitor, "duration_histogram", lambda: planted)
    try:
        samples = scrape(registry)
    finally:
        monitor.remove()
        engine.dispose()

    def value(name: str, **labels: str) -> float:
        return samples[name, tuple(sorted({"engine": "public", **labels}.items()))]

    assert value("resilience_kit_db_query_duration_seconds_bucket", le="0.001") == 7
    assert value("resilience_kit_db_query_duration_seconds_bucket", le="0.0025") == 8
    assert value("resilience_kit_db_query_duration_seconds_bucket", le="+Inf") == 9
    assert value("resilience_kit_db_query_duration_seconds_sum") == 1.5
    assert value("resilience_kit_db_query_duration_seconds_count") == 9
