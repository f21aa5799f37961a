"""Pool signals: size, checked out, overflow, time waiting for a connection, timeouts."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from resilience_kit.sql import install_query_monitor

sa = pytest.importorskip("sqlalchemy")


def hold(engine: Any, seconds: float, holding: threading.Event) -> threading.Thread:
    def run() -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_size_checked_out_and_overflow_are_read_from_the_pool(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db'}", pool_size=2, max_overflow=3)
    monitor = install_query_monitor(engine)
    connections = [engine.connect() for _ in range(3)]
    pool = monitor.stats().pool
    assert pool is not None
    assert (pool.pool, pool.size, pool.checked_out, pool.overflow) == ("QueuePool", 2, 3, 1)
    assert pool.max_connections == 5
    assert monitor.to_dict()["db_metrics"]["pool"]["max_connections"] == 5
    assert pool.checkouts == 3
    for connection in connections:
        connection.close()
    pool = monitor.stats().pool
    assert pool is not None
    assert pool.checked_out == 0
    monitor.remove()
    engine.dispose()


def test_a_second_holder_waits_and_the_wait_is_measured(file_engine: Any) -> None:
    monitor = install_query_monitor(file_engine)
    holding = threading.Event()
    first = hold(file_engine, 0.4, holding)
    holding.wait(5)
    started = time.perf_counter()
    with file_engine.connect() as connection:
        waited = time.perf_counter() - started
        connection.exec_driver_sql("SELECT 1")
    first.join()
    pool = monitor.stats().pool
    assert pool is not None
    assert pool.checkouts == 2
    assert pool.timeouts == 0
    assert 0.2 < pool.max_wait <= waited + 0.01
    assert pool.wait_time == pytest.approx(pool.max_wait, abs=0.05)
    monitor.remove()


def test_a_checkout_timeout_is_counted_and_raised_unchanged(tmp_path: Any) -> None:
    file_engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'db'}", pool_size=1, max_overflow=0, pool_timeout=0.2
    )
    monitor = install_query_monitor(file_engine)
    holding = threading.Event()
    first = hold(file_engine, 0.6, holding)
    holding.wait(5)
    with pytest.raises(sa.exc.TimeoutError, match="QueuePool limit"):
        file_engine.connect()
    first.join()
    pool = monitor.stats().pool
    assert pool is not None
    assert (pool.timeouts, pool.checkouts) == (1, 1)
    assert pool.wait_time >= 0.15  # pool_timeout=0.2
    assert monitor.to_dict()["db_metrics"]["pool"]["timeouts"] == 1
    monitor.remove()
    file_engine.dispose()


def test_connection_set_up_is_not_counted_as_waiting(file_engine: Any, monkeypatch: Any) -> None:
    import sqlite3

    real_connect = sqlite3.connect

    def slow_connect(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(file_engine.dialect.loaded_dbapi, "connect", slow_connect)
    monitor = install_query_monitor(file_engine)
    with file_engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    pool = monitor.stats().pool
    assert pool is not None
    assert pool.checkouts == 1
    assert pool.max_wait < 0.1
    monitor.remove()


def test_dispose_replaces_the_pool_and_the_new_one_is_watched(
    file_engine: Any, listener_state: Any
) -> None:
    with file_engine.connect():
        pass
    before = listener_state(file_engine)
    monitor = install_query_monitor(file_engine)
    old_pool = file_engine.pool
    file_engine.dispose()
    assert file_engine.pool is not old_pool
    for _ in range(3):
        with file_engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    pool = monitor.stats().pool
    assert pool is not None
    assert pool.checkouts == 3  # the first checkout of the new pool included
    assert "_do_get" not in vars(old_pool)
    monitor.remove()
    assert "_do_get" not in vars(file_engine.pool)
    assert listener_state(file_engine) == before


def test_reset_zeroes_the_pool_counters(file_engine: Any) -> None:
    monitor = install_query_monitor(file_engine)
    with file_engine.connect():
        pass
    monitor.reset()
    pool = monitor.stats().pool
    assert pool is not None
    assert (pool.checkouts, pool.wait_time, pool.timeouts) == (0, 0.0, 0)
    monitor.remove()


@pytest.mark.parametrize("options", [{"poolclass": "NullPool"}, {"poolclass": "StaticPool"}])
def test_a_pool_without_a_fixed_limit_has_no_max_connections(options: dict[str, str]) -> None:
    engine = sa.create_engine("sqlite://", poolclass=getattr(sa.pool, options["poolclass"]))
    monitor = install_query_monitor(engine)
    pool = monitor.stats().pool
    assert pool is not None
    assert pool.max_connections is None
    monitor.remove()
    engine.dispose()
