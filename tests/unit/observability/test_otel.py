"""OpenTelemetry: observable instruments read at collection, span events on the current span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from resilience_kit import CircuitBreaker, CircuitOpenError, otel
from resilience_kit.prometheus import Histogram, MetricFamily, add_source, remove_source
from resilience_kit.retry import retry
from resilience_kit.testing import no_waits

pytestmark = pytest.mark.usefixtures("breakers")


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrumentation = otel.instrument(meter_provider=provider, span_events=False)
    yield reader
    instrumentation.close()
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                table = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    table[tuple(sorted(point.attributes.items()))] = point.value
    return found


def test_the_same_figures_as_observable_instruments(reader: InMemoryMetricReader) -> None:
    breaker = CircuitBreaker("otel-upstream", failure_threshold=1)
    breaker.call(lambda: 1)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: 1)
    found = points(reader)
    calls = found["resilience_kit.breaker_calls"]
    assert calls[(("breaker", "otel-upstream"), ("outcome", "success"))] == 1
    assert calls[(("breaker", "otel-upstream"), ("outcome", "failure"))] == 1
    rejected = found["resilience_kit.breaker_rejected_calls"]
    assert rejected[(("breaker", "otel-upstream"),)] == 1
    state = found["resilience_kit.breaker_state"]
    assert state[(("breaker", "otel-upstream"), ("state", "OPEN"))] == 1
    assert state[(("breaker", "otel-upstream"), ("state", "CLOSED"))] == 0
    transitions = found["resilience_kit.breaker_transitions"]
    assert transitions[(("breaker", "otel-upstream"), ("to_state", "OPEN"))] == 1


def test_retry_cache_and_query_monitor_figures_too(reader: InMemoryMetricReader) -> None:
    import sqlalchemy as sa

    from resilience_kit.cache import MemoryBackend, cached
    from resilience_kit.sql import install_query_monitor

    @retry("database", name="otel-all", attempts=2)
    def once() -> int:
        return 1

    @cached("otel-all", ttl=60, backend=MemoryBackend())
    def user(user_id: int) -> int:
        return user_id

    once()
    user(1)
    user(1)
    engine = sa.create_engine("sqlite://", logging_name="otel-all")
    monitor = install_query_monitor(engine)
    try:
        with engine.connect() as connection:
            for _ in range(3):
                connection.exec_driver_sql("SELECT 1")
        found = points(reader)
    finally:
        monitor.remove()
        engine.dispose()
    engine_label = (("engine", "otel-all"),)
    assert found["resilience_kit.db_queries"][engine_label] == 3
    assert found["resilience_kit.db_query_duration_seconds.count"][engine_label] == 3
    assert 0 < found["resilience_kit.db_query_duration_seconds.sum"][engine_label] < 3
    assert found["resilience_kit.cache_hits"][(("prefix", "otel-all"),)] == 1
    assert found["resilience_kit.cache_misses"][(("prefix", "otel-all"),)] == 1
    retry_calls = {
        name: table for name, table in found.items() if name.startswith("resilience_kit.retry")
    }
    assert any(("policy", "otel-all") in key for t in retry_calls.values() for key in t)


def test_nothing_is_read_between_collections() -> None:
    reads = []

    def source() -> list[MetricFamily]:
        reads.append(1)
        family = MetricFamily("otel_probe", "gauge", "A probe.", ("engine",))
        family.add(3.0, "main")
        durations = MetricFamily("otel_seconds", "histogram", "Durations.", ("engine",))
        durations.add(Histogram(((1.0, 2.0), (float("inf"), 3.0)), 4.5, 3.0), "main")
        return [family, durations]

    add_source("test-otel", source)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrumentation = otel.instrument(
        meter_provider=provider, sources=["test-otel"], span_events=False
    )
    try:
        created = len(reads)
        breaker = CircuitBreaker("otel-hot")
        for _ in range(100):
            breaker.call(lambda: 1)
        assert len(reads) == created, "the hot path reads nothing"
        found = points(reader)
        assert len(reads) == created + 1, "one read serves every instrument of a collection"
        assert found["resilience_kit.otel_probe"] == {(("engine", "main"),): 3.0}
        assert found["resilience_kit.otel_seconds.count"] == {(("engine", "main"),): 3.0}
        assert found["resilience_kit.otel_seconds.sum"] == {(("engine", "main"),): 4.5}
    finally:
        instrumentation.close()
        provider.shutdown()
        remove_source("test-otel")


def test_transitions_and_retries_are_span_events() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    instrumentation = otel.instrument(meter_provider=MeterProvider(), span_events=True)
    breaker = CircuitBreaker("otel-spans", failure_threshold=2)
    attempts = []

    @retry("database", name="otel-retry", attempts=3, min_wait=0.25, max_wait=0.25)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("reset")
        return "ok"

    try:
        with tracer.start_as_current_span("request"), no_waits():
            assert flaky() == "ok"
            for _ in range(2):
                with pytest.raises(ZeroDivisionError):
                    breaker.call(lambda: 1 / 0)
        outside = CircuitBreaker("otel-no-span", failure_threshold=1)
        with pytest.raises(ZeroDivisionError):
            outside.call(lambda: 1 / 0)  # no span is current: nothing to record, no error
    finally:
        instrumentation.close()
    (span,) = exporter.get_finished_spans()
    events = [(event.name, dict(event.attributes or {})) for event in span.events]
    retries = [attributes for name, attributes in events if name == "resilience_kit.retry"]
    assert [r["retry.attempt"] for r in retries] == [1, 2]
    assert retries[0]["retry.policy"] == "otel-retry"
    assert retries[0]["error.type"] == "ConnectionError"
    assert retries[0]["retry.wait_s"] == 0.25
    (transition,) = [a for name, a in events if name == "resilience_kit.breaker.transition"]
    assert transition["breaker.name"] == "otel-spans"
    assert transition["breaker.from"] == "CLOSED"
    assert transition["breaker.to"] == "OPEN"
    assert "ZeroDivisionError" in transition["breaker.cause"]
    # Closed: no more events.
    with tracer.start_as_current_span("after"):
        breaker.reset()
    assert exporter.get_finished_spans()[-1].events == ()


def test_a_retried_result_is_a_span_event_with_its_type() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentation = otel.instrument(meter_provider=MeterProvider(), span_events=True)
    answers = iter([503, 503, 200])

    @retry("external_api", name="otel-result", attempts=3, retry_if_result=lambda r: r == 503)
    def fetch() -> int:
        return next(answers)

    try:
        with provider.get_tracer("test").start_as_current_span("request"), no_waits():
            assert fetch() == 200
    finally:
        instrumentation.close()
    (span,) = exporter.get_finished_spans()
    events = [dict(e.attributes or {}) for e in span.events if e.name == "resilience_kit.retry"]
    assert [e["retry.result_type"] for e in events] == ["int", "int"]
    assert all("error.type" not in e for e in events)
