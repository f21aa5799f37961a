"""A query monitor on the real PostgreSQL, scraped: figures per engine, promtool-clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from resilience_kit import prometheus as rk_prometheus
from resilience_kit.sql import install_query_monitor


def test_postgresql_statements_in_the_scrape(database_url: str) -> None:
    import sqlalchemy as sa

    name = f"pg-{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(database_url, pool_size=2, max_overflow=1, logging_name=name)
    monitor = install_query_monitor(engine, slow_threshold=0.05)
    registry = CollectorRegistry()
    collector = rk_prometheus.register(registry=registry, sources=["sql"])
    try:
        with engine.connect() as connection:
            for number in range(20):
                connection.execute(sa.text("SELECT :n"), {"n": number})
            connection.execute(sa.text("SELECT pg_sleep(0.08)"))
            with pytest.raises(sa.exc.ProgrammingError):
                connection.execute(sa.text("SELECT * FROM rk_no_such_table"))
            connection.rollback()
            with engine.connect():
                text = rk_prometheus.generate_latest(registry).decode()
    finally:
        rk_prometheus.unregister(collector, registry=registry)
        monitor.remove()
        engine.dispose()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(metric: str, **labels: str) -> float:
        return samples[metric, tuple(sorted({"engine": name, **labels}.items()))]

    assert value("resilience_kit_db_queries_total") >= 22
    assert value("resilience_kit_db_slow_queries_total") == 1
    assert value("resilience_kit_db_query_errors_total") == 1
    assert value("resilience_kit_db_query_duration_seconds_bucket", le="0.05") < value(
        "resilience_kit_db_query_duration_seconds_bucket", le="0.1"
    )
    assert value("resilience_kit_db_pool_checked_out") == 2
    assert value("resilience_kit_db_pool_max_connections") == 3
    assert ":n" not in text
    assert "pg_sleep" not in text, "statements are never labels"
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("RESILIENCE_KIT_REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is missing (Debian package 'prometheus'); .ci/run installs it")
        pytest.skip("promtool is missing (Debian package 'prometheus'); the figures were checked")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
