"""SQL query events: what observing every statement adds to executing it."""

from __future__ import annotations

from typing import Any

from benchmarks._harness import Context, Prepared, Section, SyncLoop
from benchmarks.sections._common import expect, ours

SECTION = Section(
    "sql",
    "SQL query event",
    "One `SELECT 1` on an open connection of an in-memory SQLite engine, so the statement itself "
    "costs little and the listeners' work shows. The baseline engine has no listeners. "
    "OpenTelemetry: `SQLAlchemyInstrumentor().instrument(engine=...)` with a `TracerProvider` "
    "whose `SimpleSpanProcessor` hands every span to an exporter that only counts it (no I/O); "
    "verification checks one span per statement. The empty listener pair is SQLAlchemy's own "
    "floor for anything built on `before_cursor_execute`/`after_cursor_execute`: two listeners "
    "that do nothing.",
    order=40,
    requires=("resilience_kit.sql",),
)

statement = SECTION.group("statement", "One statement, SQLite in memory", SyncLoop())


def _engine_and_connection() -> tuple[Any, Any, Any]:
    import sqlalchemy

    engine = sqlalchemy.create_engine("sqlite://")
    return engine, engine.connect(), sqlalchemy.text("SELECT 1")


def _close(engine: Any, connection: Any) -> None:
    connection.close()
    engine.dispose()


@statement.baseline("engine without listeners")
def _plain(ctx: Context) -> Prepared:
    engine, connection, select = _engine_and_connection()

    def op() -> Any:
        return connection.execute(select).scalar()

    def check() -> None:
        listeners = len(engine.dispatch.before_cursor_execute) + len(
            engine.dispatch.after_cursor_execute
        )
        expect(listeners == 0, f"the baseline engine has {listeners} statement listeners")

    return Prepared(op, returns=1, check=check, close=lambda: _close(engine, connection))


@statement.add("empty before/after cursor listener pair", "sqlalchemy")
def _empty_pair(ctx: Context) -> Prepared:
    import sqlalchemy

    engine, connection, select = _engine_and_connection()

    def before(*args: Any) -> None:
        pass

    def after(*args: Any) -> None:
        pass

    sqlalchemy.event.listen(engine, "before_cursor_execute", before)
    sqlalchemy.event.listen(engine, "after_cursor_execute", after)

    def op() -> Any:
        return connection.execute(select).scalar()

    def check() -> None:
        listeners = len(engine.dispatch.before_cursor_execute) + len(
            engine.dispatch.after_cursor_execute
        )
        expect(listeners == 2, f"the engine has {listeners} statement listeners, expected 2")

    return Prepared(op, returns=1, check=check, close=lambda: _close(engine, connection))


# Declared before OpenTelemetry: its instrumentor also wraps sqlalchemy.create_engine, and an
# engine created after it would carry its listeners too.
@statement.add("resilience_kit", "resilience-kit-py")
def _ours(ctx: Context) -> Prepared:
    install_query_monitor = ours("resilience_kit.sql", "install_query_monitor")
    engine, connection, select = _engine_and_connection()
    monitor = install_query_monitor(engine)
    seen = [0]

    def op() -> Any:
        return connection.execute(select).scalar()

    def reset() -> None:
        seen[0] = monitor.stats().total_queries

    def check() -> None:
        counted = monitor.stats().total_queries - seen[0]
        expect(counted == 1, f"the monitor counted {counted} queries for one statement")

    def close() -> None:
        monitor.remove()
        _close(engine, connection)

    return Prepared(op, returns=1, check=check, reset=reset, close=close)


@statement.add("OpenTelemetry SQLAlchemyInstrumentor", "opentelemetry-instrumentation-sqlalchemy")
def _opentelemetry(ctx: Context) -> Prepared:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine, connection, select = _engine_and_connection()
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument(engine=engine, tracer_provider=provider)

    def op() -> Any:
        return connection.execute(select).scalar()

    def reset() -> None:
        exporter.spans = 0

    def check() -> None:
        expect(exporter.spans == 1, f"expected one span per statement, got {exporter.spans}")

    def close() -> None:
        instrumentor.uninstrument()
        _close(engine, connection)
        provider.shutdown()

    return Prepared(op, returns=1, check=check, reset=reset, close=close)


# In a group of its own: the instrumentor is a process-wide singleton whose instrument() does
# nothing while it is instrumented already, and it wraps sqlalchemy.create_engine with the first
# caller's tracer. Beside the SDK case, this case's engine carried the SDK tracer (its row
# measured the SDK again); here the SDK case is closed (uninstrumented) before this one is set up.
statement_noop = SECTION.group(
    "statement_noop", "One statement, OpenTelemetry with a no-op tracer", SyncLoop()
)
statement_noop.baseline("engine without listeners")(_plain)


@statement_noop.add(
    "OpenTelemetry SQLAlchemyInstrumentor, no-op tracer", "opentelemetry-instrumentation-sqlalchemy"
)
def _opentelemetry_noop(ctx: Context) -> Prepared:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.trace import NoOpTracer, NoOpTracerProvider

    instrumentor = SQLAlchemyInstrumentor()
    expect(
        not instrumentor._is_instrumented_by_opentelemetry,
        "the instrumentor is already instrumented (by another case): instrument() would be ignored",
    )
    engine, connection, select = _engine_and_connection()
    instrumentor.instrument(engine=engine, tracer_provider=NoOpTracerProvider())

    def op() -> Any:
        return connection.execute(select).scalar()

    def check() -> None:
        tracers = [
            getattr(getattr(listener, "__self__", None), "tracer", None)
            for listener in engine.dispatch.before_cursor_execute
        ]
        expect(bool(tracers), "the instrumentor registered no statement listener")
        expect(
            all(isinstance(tracer, NoOpTracer) for tracer in tracers),
            f"the engine's statement listeners trace with {tracers}, not a no-op tracer",
        )

    def close() -> None:
        instrumentor.uninstrument()
        _close(engine, connection)

    return Prepared(op, returns=1, check=check, close=close)


# The bounds are relative (at most the empty listener pair, at most a third of
# OpenTelemetry with a no-op tracer) and judged on callgrind instruction counts (docs/sql.md);
# this absolute bound is the harness's tripwire for a regression in the timed run.
SECTION.target("statement", "resilience_kit", 3000, "Query monitor, one statement")

# Issue 13's targets, judged on instruction counts (``--instructions``).
SECTION.instruction_target(
    "Query monitor ≤ an empty before/after cursor listener pair (added instructions)",
    case=("statement", "resilience_kit"),
    reference=("statement", "empty before/after cursor listener pair"),
    max_ratio=1.0,
)
SECTION.instruction_target(
    "Query monitor ≤ 1/3 of OpenTelemetry with a no-op tracer (added instructions)",
    case=("statement", "resilience_kit"),
    reference=("statement_noop", "OpenTelemetry SQLAlchemyInstrumentor, no-op tracer"),
    max_ratio=1 / 3,
)
