# ruff: noqa: S608  (statements with literals written in are what is being tested)
"""install_query_monitor on SQLite: hooks, statistics, bounds, failures, logging."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from resilience_kit import ConfigurationError
from resilience_kit.sql import OTHER, QueryMonitor, install_query_monitor
from resilience_kit.sql import _hub as hub_module

sa = pytest.importorskip("sqlalchemy")
LOGGER = "resilience_kit.sql"


def run(engine: Any, sql: str, parameters: Any = None) -> Any:
    with engine.begin() as connection:
        return (
            connection.execute(sa.text(sql), parameters).all()
            if sql.lstrip().lower().startswith("select")
            else connection.execute(sa.text(sql), parameters).rowcount
        )


# -- install / remove ---------------------------------------------------------------------------


def test_remove_restores_every_listener_collection(engine: Any, listener_state: Any) -> None:
    before = listener_state(engine)
    monitor = install_query_monitor(engine)
    assert listener_state(engine) != before
    run(engine, "SELECT 1")
    monitor.remove()
    assert listener_state(engine) == before
    monitor.remove()  # a second call does nothing
    assert listener_state(engine) == before


def test_install_and_remove_a_thousand_times_leaves_nothing(
    engine: Any, listener_state: Any
) -> None:
    before = listener_state(engine)
    for _ in range(1000):
        monitor = install_query_monitor(engine)
        run(engine, "SELECT 1")
        assert monitor.stats().total_queries == 1
        monitor.remove()
    assert listener_state(engine) == before
    assert engine not in hub_module._HUBS


def test_remove_keeps_foreign_listeners(engine: Any, listener_state: Any) -> None:
    seen: list[str] = []

    def before_cursor(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", before_cursor)
    before = listener_state(engine)
    monitor = install_query_monitor(engine)
    run(engine, "SELECT 1")
    monitor.remove()
    assert listener_state(engine) == before
    run(engine, "SELECT 2")
    assert seen == ["SELECT 1", "SELECT 2"]


def test_several_engines_at_once_each_counts_its_own(tmp_path: Any) -> None:
    engines = [sa.create_engine(f"sqlite:///{tmp_path / f'{i}.db'}") for i in range(3)]
    monitors = [install_query_monitor(e) for e in engines]
    for count, engine in enumerate(engines, start=1):
        for _ in range(count):
            run(engine, "SELECT 1")
    assert [m.stats().total_queries for m in monitors] == [1, 2, 3]
    for monitor, engine in zip(monitors, engines, strict=True):
        monitor.remove()
        engine.dispose()


def test_two_monitors_on_one_engine_both_count_and_leave_independently(
    engine: Any, listener_state: Any
) -> None:
    before = listener_state(engine)
    first = install_query_monitor(engine)
    second = install_query_monitor(engine, slow_threshold=0)
    run(engine, "SELECT 1")
    first.remove()
    run(engine, "SELECT 1")
    assert first.stats().total_queries == 1  # readable after remove, frozen
    assert second.stats().total_queries == 2
    assert second.stats().slow_queries == 2
    second.remove()
    assert listener_state(engine) == before


def test_an_engine_dropped_without_remove_is_freed_with_its_monitor() -> None:
    import gc
    import weakref

    from resilience_kit.sql import monitors

    def install_and_drop() -> Any:
        # NullPool closes the connection when it is given back: the engine is dropped, not its
        # connection leaked (3.13 reports an unclosed sqlite3 connection as a ResourceWarning).
        engine = sa.create_engine("sqlite://", poolclass=sa.pool.NullPool)
        monitor = install_query_monitor(engine)
        run(engine, "SELECT 1")
        return weakref.ref(engine), weakref.ref(monitor)

    engine, monitor = install_and_drop()
    gc.collect()
    assert engine() is None
    assert monitor() is None
    assert not monitors()


def test_a_monitor_installed_later_does_not_see_earlier_statements(engine: Any) -> None:
    first = install_query_monitor(engine)
    for _ in range(5):
        run(engine, "SELECT 1")  # buffered, not yet folded: nobody has read the stats
    second = install_query_monitor(engine)
    assert second.stats().total_queries == 0
    run(engine, "SELECT 1")
    assert second.stats().total_queries == 1
    assert first.stats().total_queries == 6
    first.remove()
    second.remove()


async def test_async_engine_is_monitored_and_removed_exactly(listener_state: Any) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    before = listener_state(engine)
    monitor = install_query_monitor(engine)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        await connection.execute(sa.text("INSERT INTO t VALUES (:x)"), [{"x": 1}, {"x": 2}])
        result = await connection.execute(sa.text("SELECT x FROM t WHERE x > :low"), {"low": 0})
        assert result.scalars().all() == [1, 2]
    stats = monitor.stats()
    assert stats.total_queries == 3
    assert stats.rows == 2
    assert {s.fingerprint for s in monitor.top()} == {
        "create table t(x integer)",
        "insert into t values (...)",
        "select x from t where x > ?",
    }
    monitor.remove()
    assert listener_state(engine) == before
    await engine.dispose()


def test_monitors_lists_the_installed_ones(engine: Any) -> None:
    from resilience_kit.sql import monitors

    first = install_query_monitor(engine)
    second = install_query_monitor(engine)
    assert {first, second} <= set(monitors())
    first.remove()
    assert first not in monitors()
    assert second in monitors()
    second.remove()
    assert second not in monitors()


def test_configuration_errors_name_the_parameter(engine: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"slow_threshold": -1}, "slow_threshold"),
        ({"max_statements": 0}, "max_statements"),
        ({"n_plus_one_threshold": 1}, "n_plus_one_threshold"),
        ({"explain_slow": True}, "explain_slow"),  # SQLite has no EXPLAIN (FORMAT JSON)
    ]
    for kwargs, name in cases:
        with pytest.raises(ConfigurationError, match=name) as caught:
            install_query_monitor(engine, **kwargs)
        assert caught.value.parameter == name
    with pytest.raises(ConfigurationError, match="engine"):
        install_query_monitor(object())  # type: ignore[arg-type]
    assert engine not in hub_module._HUBS  # nothing half-installed


# -- statistics ---------------------------------------------------------------------------------


def test_statements_differing_in_values_share_one_row(engine: Any) -> None:
    monitor = install_query_monitor(engine)
    for i in range(5):
        run(engine, f"SELECT * FROM items WHERE id = {i} AND name IN ('a', 'b{i}')")
        run(engine, "SELECT * FROM items WHERE id = :id AND name IN ('x')", {"id": i})
    rows = {s.fingerprint: s for s in monitor.top()}
    assert rows["select * from items where id = ? and name in (...)"].calls == 10
    assert len(rows) == 1
    monitor.remove()


def test_a_mysql_engine_fingerprints_by_mysql_rules_and_leaks_no_value(
    engine: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite stands in for MySQL: only the dialect's name decides the lexis. SQLite rejects the
    # backslash-escaped quote, which is fine: a failed statement gets its row and log line too.
    monkeypatch.setattr(engine.dialect, "name", "mysql")
    monitor = install_query_monitor(engine, slow_threshold=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(sa.exc.OperationalError):
        run(engine, "SELECT * FROM items WHERE password = 'x\\'hunter2' AND id = 1")
    (row,) = monitor.top()
    assert row.fingerprint == "select * from items where password = ? and id = ?"
    assert row.errors == 1
    assert "hunter2" not in "\n".join(slow_records(caplog))
    monitor.remove()


def test_per_statement_figures(engine: Any) -> None:
    monitor = install_query_monitor(engine)
    run(engine, "INSERT INTO items (name) VALUES ('a'), ('b'), ('c')")
    for _ in range(20):
        run(engine, "SELECT name FROM items")
    top = monitor.top(5, by="calls")
    select = top[0]
    assert select.fingerprint == "select name from items"
    assert select.calls == 20
    assert select.errors == 0
    assert 0 < select.min_time <= select.p50 <= select.p95 <= select.p99 <= select.max_time
    assert select.min_time <= select.mean_time <= select.max_time
    assert select.total_time == pytest.approx(select.mean_time * 20)
    insert = next(s for s in top if s.fingerprint.startswith("insert"))
    assert insert.fingerprint == "insert into items(name) values (...)"
    assert insert.rows == 3
    stats = monitor.stats()
    assert stats.total_queries == 21
    assert stats.avg_time == pytest.approx(stats.total_time / 21)
    assert stats.total_time == pytest.approx(sum(s.total_time for s in top))
    monitor.remove()


def test_executemany_counts_one_call_and_every_row(engine: Any) -> None:
    monitor = install_query_monitor(engine)
    run(engine, "INSERT INTO items (name) VALUES (:name)", [{"name": str(i)} for i in range(7)])
    (insert,) = monitor.top()
    assert (insert.calls, insert.rows) == (1, 7)
    monitor.remove()


def test_failed_statement_is_counted_and_its_error_is_unchanged(engine: Any) -> None:
    monitor = install_query_monitor(engine)
    with pytest.raises(sa.exc.OperationalError, match="no such table: missing") as caught:
        run(engine, "SELECT * FROM missing")
    assert type(caught.value.orig).__name__ == "OperationalError"
    with pytest.raises(sa.exc.IntegrityError):
        run(engine, "INSERT INTO items (id) VALUES (1), (1)")
    stats = monitor.stats()
    assert (stats.total_queries, stats.errors) == (2, 2)
    assert {s.fingerprint: s.errors for s in monitor.top()} == {
        "select * from missing": 1,
        "insert into items(id) values (...)": 1,
    }
    monitor.remove()


def test_max_statements_folds_the_rest_into_other_and_keeps_totals(engine: Any) -> None:
    monitor = install_query_monitor(engine, max_statements=10)
    for i in range(50):
        run(engine, f"SELECT {i} AS c{i}")
    stats = monitor.stats()
    assert stats.total_queries == 50
    assert stats.statements <= 10
    assert stats.evictions == 50 - stats.statements
    rows = monitor.top(100)
    other = next(r for r in rows if r.fingerprint == OTHER)
    assert other.calls == stats.evictions
    assert sum(r.calls for r in rows) == 50
    assert sum(r.total_time for r in rows) == pytest.approx(stats.total_time)
    monitor.remove()


def test_top_orders_by_the_key_asked_for(engine: Any) -> None:
    monitor = install_query_monitor(engine)
    for _ in range(3):
        run(engine, "SELECT 1")
    run(engine, "INSERT INTO items (name) VALUES ('a'), ('b')")
    assert monitor.top(1, by="calls")[0].fingerprint == "select ?"
    assert monitor.top(1, by="rows")[0].fingerprint.startswith("insert")
    assert len(monitor.top(1)) == 1
    assert monitor.top(0) == []
    with pytest.raises(ConfigurationError, match="by"):
        monitor.top(by="speed")  # type: ignore[arg-type]
    monitor.remove()


def test_to_dict_has_the_admin_endpoint_shape(engine: Any) -> None:
    monitor = install_query_monitor(engine, slow_threshold=0)
    run(engine, "SELECT 1")
    data = monitor.to_dict()
    assert list(data) == ["db_metrics"]
    metrics = data["db_metrics"]
    assert list(metrics)[:5] == [
        "total_queries",
        "slow_queries",
        "total_time",
        "avg_time",
        "slow_query_percentage",
    ]
    assert metrics["total_queries"] == 1
    assert metrics["slow_query_percentage"] == 100.0
    assert metrics["top_statements"][0]["fingerprint"] == "select ?"
    assert set(metrics["pool"]) >= {"size", "checked_out", "overflow", "wait_time", "timeouts"}
    json.dumps(data)  # JSON-able as it is
    monitor.remove()


def test_reset_forgets_everything_and_keeps_counting(engine: Any) -> None:
    monitor = install_query_monitor(engine, slow_threshold=0)
    run(engine, "SELECT 1")
    monitor.reset()
    stats = monitor.stats()
    assert (stats.total_queries, stats.slow_queries, stats.statements) == (0, 0, 0)
    assert monitor.top() == []
    run(engine, "SELECT 1")
    assert monitor.stats().total_queries == 1
    monitor.remove()


def test_counts_are_exact_under_threads(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=8)
    monitor = install_query_monitor(engine)
    per_thread = 3000  # past FOLD_EVERY, so folds race with appends

    def work() -> None:
        with engine.connect() as connection:
            for _ in range(per_thread):
                connection.exec_driver_sql("SELECT 1")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert monitor.stats().total_queries == 6 * per_thread
    monitor.remove()
    engine.dispose()


# -- the monitor's own failures -----------------------------------------------------------------


def test_a_failure_inside_the_monitor_is_logged_once_and_never_breaks_a_query(
    engine: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = install_query_monitor(engine, slow_threshold=0)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(QueryMonitor, "on_slow", broken)
    monkeypatch.setattr(QueryMonitor, "fold", broken)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(5):
            assert run(engine, "SELECT 1") == [(1,)]
        with pytest.raises(sa.exc.OperationalError, match="missing"):
            run(engine, "SELECT * FROM missing")
        monitor.stats()
    failures = [r for r in caplog.records if "query monitor failed" in r.getMessage()]
    assert len(failures) == 1
    assert "bookkeeping bug" in failures[0].getMessage()
    monitor.remove()


# -- slow-query log -----------------------------------------------------------------------------


def slow_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("SLOW QUERY")]


def test_slow_threshold_zero_logs_every_statement_with_parameters_redacted(
    engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = install_query_monitor(engine, slow_threshold=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(engine, "SELECT * FROM items WHERE name = :name", {"name": "alice"})
        run(engine, "SELECT * FROM items WHERE name = 'bob'")
    first, second = slow_records(caplog)
    assert "Fingerprint: select * from items where name = ?" in first
    assert "SQL: SELECT * FROM items WHERE name = ?" in first
    assert "alice" not in first
    assert "Parameters: [redacted" in first
    # A value written into the SQL is a parameter too: shown as "?" without log_parameters.
    assert "bob" not in second
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    monitor.remove()


def test_log_parameters_shows_values_but_masks_secret_names(
    engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = install_query_monitor(engine, slow_threshold=0, log_parameters=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(
            engine,
            "INSERT INTO items (name, password) VALUES (:name, :password)",
            {"name": "alice", "password": "hunter2"},
        )
        run(
            engine,
            "INSERT INTO items (name, password) VALUES (:name, :api_key)",
            [{"name": "bob", "api_key": "k-123"}, {"name": "carol", "api_key": "k-456"}],
        )
        with engine.connect() as connection:  # positional, no names: the SQL names a secret
            connection.exec_driver_sql(
                "SELECT * FROM items WHERE password = ? AND name = ?", ("s3cret", "dave")
            )
        run(engine, "SELECT * FROM items WHERE password = 'inline-secret'")
    text = "\n".join(slow_records(caplog))
    assert "alice" in text
    assert "bob" in text
    for secret in ("hunter2", "k-123", "k-456", "s3cret", "inline-secret"):
        assert secret not in text
    assert "(2 rows)" in text
    monitor.remove()


def test_statements_under_the_threshold_are_not_logged(
    engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = install_query_monitor(engine, slow_threshold=10)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(engine, "SELECT 1")
    assert slow_records(caplog) == []
    assert monitor.stats().slow_queries == 0
    monitor.remove()


# -- the duration histogram ---------------------------------------------------------------------


def plant(monitor: QueryMonitor, *durations: float) -> None:
    """Statements with exact durations, handed over as the statement hook hands them."""
    monitor.hub.pending.extend(("SELECT 1", seconds, 1) for seconds in durations)


def test_duration_histogram_counts_every_statement_cumulatively(engine: Any) -> None:
    monitor = install_query_monitor(engine)
    plant(monitor, 0.0005, 0.003, 0.003, 0.2, 30.0)
    histogram = monitor.duration_histogram((0.001, 0.01, 1.0))
    assert [bound for bound, _ in histogram.buckets] == [0.001, 0.01, 1.0, float("inf")]
    assert [count for _, count in histogram.buckets] == [1, 3, 4, 5]
    assert histogram.count == 5
    assert histogram.sum == pytest.approx(30.2065)
    default = monitor.duration_histogram()
    assert default.buckets[-1] == (float("inf"), 5)
    assert [bound for bound, _ in default.buckets[:-1]] == [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
    ]  # fmt: skip
    monitor.reset()
    assert monitor.duration_histogram((1.0,)).buckets == ((1.0, 0), (float("inf"), 0))
    monitor.remove()


def test_duration_histogram_counts_a_straddling_bucket_at_the_next_bound_up(engine: Any) -> None:
    # 1.05 ms shares a monitor bucket with durations just under 1 ms: the pair is never
    # counted under 1 ms (late by one fine bucket rather than early).
    monitor = install_query_monitor(engine)
    plant(monitor, 0.00105, 0.00099)
    histogram = monitor.duration_histogram((0.001, 0.002))
    assert [count for _, count in histogram.buckets] == [0, 2, 2]
    monitor.remove()


def test_duration_histogram_keeps_the_other_rows_statements(engine: Any) -> None:
    monitor = install_query_monitor(engine, max_statements=1)
    for i in range(5):
        run(engine, f"SELECT id AS column_{i} FROM items")  # five fingerprints
    assert monitor.stats().evictions > 0
    assert monitor.duration_histogram().count == monitor.stats().total_queries
    monitor.remove()


@pytest.mark.parametrize("bounds", [(), (0.1, 0.01), (0.0, 1.0), (1.0, float("inf")), (1.0, 1.0)])
def test_duration_histogram_refuses_bad_bounds(engine: Any, bounds: tuple[float, ...]) -> None:
    monitor = install_query_monitor(engine)
    with pytest.raises(ConfigurationError, match="bounds"):
        monitor.duration_histogram(bounds)
    monitor.remove()
