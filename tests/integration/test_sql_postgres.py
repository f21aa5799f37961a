# ruff: noqa: S608  (table names are generated per test, never user input)
"""The query monitor on the real PostgreSQL, through psycopg (sync) and asyncpg (async)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from resilience_kit.sql import engine_from_env, install_query_monitor

sa = pytest.importorskip("sqlalchemy")
LOGGER = "resilience_kit.sql"


def asyncpg_url(database_url: str) -> str:
    return (
        sa.engine.make_url(database_url)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def table() -> str:
    return f"rk_sql_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg(database_url: str, table: str) -> Iterator[Any]:
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=10)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text)")
    yield engine
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    engine.dispose()


@pytest.fixture
async def apg(database_url: str, table: str) -> AsyncIterator[Any]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        asyncpg_url(database_url), pool_size=1, max_overflow=0, pool_timeout=10
    )
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text)")
    yield engine
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    await engine.dispose()


def slow_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("SLOW QUERY")]


def test_psycopg_statistics_slow_log_and_errors(
    pg: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = install_query_monitor(pg, slow_threshold=0.2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        with pg.begin() as connection:
            connection.execute(
                sa.text(f"INSERT INTO {table} (name) VALUES (:name)"),
                [{"name": f"n{i}"} for i in range(5)],
            )
            for i in range(3):
                rows = connection.execute(
                    sa.text(f"SELECT name FROM {table} WHERE id > :low"), {"low": i}
                ).all()
                assert len(rows) == 5 - i
            connection.execute(sa.text("SELECT pg_sleep(:s)"), {"s": 0.3})
        with pytest.raises(sa.exc.ProgrammingError, match="does_not_exist"), pg.connect() as c:
            c.exec_driver_sql("SELECT * FROM does_not_exist")
    by_fingerprint = {s.fingerprint: s for s in monitor.top(10)}
    select = by_fingerprint[f"select name from {table} where id > ?"]
    assert (select.calls, select.rows) == (3, 5 + 4 + 3)
    assert by_fingerprint[f"insert into {table}(name) values (...)"].rows == 5
    assert by_fingerprint["select * from does_not_exist"].errors == 1
    sleep = by_fingerprint["select pg_sleep(?)"]
    assert sleep.slow == 1
    assert sleep.max_time >= 0.3
    (message,) = slow_messages(caplog)
    assert "select pg_sleep(?)" in message
    assert "0.3" not in message.split("Parameters:")[1]  # redacted by default
    stats = monitor.stats()
    assert (stats.slow_queries, stats.errors) == (1, 1)
    assert stats.pool is not None
    assert (stats.pool.pool, stats.pool.size) == ("QueuePool", 1)
    monitor.remove()


def test_psycopg_pool_of_one_with_two_holders_measures_the_wait(pg: Any) -> None:
    monitor = install_query_monitor(pg)
    holding = threading.Event()

    def first_holder() -> None:
        with pg.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            holding.set()
            connection.exec_driver_sql("SELECT pg_sleep(0.4)")

    thread = threading.Thread(target=first_holder)
    thread.start()
    holding.wait(10)
    with pg.connect() as connection:  # waits for the first holder
        connection.exec_driver_sql("SELECT 1")
    thread.join()
    pool = monitor.stats().pool
    assert pool is not None
    assert pool.checkouts == 2
    assert 0.2 < pool.max_wait < 2
    monitor.remove()


async def test_asyncpg_statistics_slow_log_and_pool_wait(
    apg: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = install_query_monitor(apg, slow_threshold=0.2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with apg.begin() as connection:
            await connection.execute(
                sa.text(f"INSERT INTO {table} (name) VALUES (:name)"),
                [{"name": f"n{i}"} for i in range(4)],
            )
            result = await connection.execute(sa.text(f"SELECT name FROM {table}"))
            assert len(result.all()) == 4
            await connection.execute(sa.text("SELECT pg_sleep(0.3)"))

        async def holder(started: asyncio.Event) -> None:
            async with apg.connect() as connection:
                started.set()
                await connection.exec_driver_sql("SELECT pg_sleep(0.4)")

        started = asyncio.Event()
        first = asyncio.create_task(holder(started))
        await started.wait()
        async with apg.connect() as connection:  # waits for the holder's connection
            await connection.exec_driver_sql("SELECT 1")
        await first
    rows = {s.fingerprint: s for s in monitor.top(10)}
    assert rows[f"select name from {table}"].calls == 1
    assert rows[f"insert into {table}(name) values (...)"].calls >= 1
    assert sum(s.rows for s in rows.values() if s.fingerprint.startswith("insert")) == 4
    assert any("pg_sleep" in m for m in slow_messages(caplog))
    stats = monitor.stats()
    assert stats.slow_queries == 2  # the 0.3 s statement and the holder's 0.4 s
    assert stats.pool is not None
    assert stats.pool.pool == "AsyncAdaptedQueuePool"
    assert 0.2 < stats.pool.max_wait < 2
    monitor.remove()


def test_explain_slow_attaches_a_plan_to_slow_selects_only(pg: Any, table: str) -> None:
    monitor = install_query_monitor(pg, slow_threshold=0.2, explain_slow=True)
    explainer = monitor.explainer
    assert explainer is not None
    with pg.begin() as connection:
        for _ in range(2):  # the second is rate-limited
            connection.execute(
                sa.text(f"SELECT name FROM {table}, pg_sleep(:s) WHERE id > :low"),
                {"s": 0.25, "low": 0},
            )
            explainer.join(10)
        connection.execute(
            sa.text(f"INSERT INTO {table} (name) SELECT 'x' FROM pg_sleep(:s)"), {"s": 0.25}
        )
        explainer.join(10)
    rows = {s.fingerprint: s for s in monitor.top(10)}
    select = rows[f"select name from {table}, pg_sleep(?) where id > ?"]
    assert select.slow == 2
    assert isinstance(select.plan, list)
    assert select.plan[0]["Plan"]["Node Type"]
    assert "plan" in next(
        s
        for s in monitor.to_dict()["db_metrics"]["top_statements"]
        if s["fingerprint"] == select.fingerprint
    )
    assert explainer.explained == 1
    insert = next(s for f, s in rows.items() if f.startswith("insert"))
    assert insert.slow == 1
    assert insert.plan is None  # writes are never explained
    monitor.remove()


async def test_explain_slow_on_asyncpg(apg: Any, table: str) -> None:
    monitor = install_query_monitor(apg, slow_threshold=0.2, explain_slow=True)
    async with apg.connect() as connection:
        await connection.execute(sa.text(f"SELECT name FROM {table}, pg_sleep(:s)"), {"s": 0.25})
    assert monitor.explainer is not None
    await asyncio.to_thread(monitor.explainer.join, 10)
    (select,) = [s for s in monitor.top(10) if s.fingerprint.startswith("select name")]
    assert isinstance(select.plan, list)
    monitor.remove()


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    name = f"rk_sql_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
        connection.exec_driver_sql(f"CREATE TABLE {name}.items (id int)")
        connection.exec_driver_sql(f"INSERT INTO {name}.items VALUES (1)")
    yield name
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
    admin.dispose()


def test_explain_connects_with_the_engines_connect_args(database_url: str, schema: str) -> None:
    # The table is found only through the search_path set in connect_args (as sslmode from
    # DB_SSL_MODE is): the EXPLAIN connection must use them too.
    engine = sa.create_engine(database_url, connect_args={"options": f"-c search_path={schema}"})
    monitor = install_query_monitor(engine, slow_threshold=0.05, explain_slow=True)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT id, pg_sleep(0.1) FROM items").all()
    assert monitor.explainer is not None
    monitor.explainer.join(10)
    (select,) = [s for s in monitor.top(50) if "from items" in s.fingerprint]
    assert isinstance(select.plan, list)
    monitor.remove()
    engine.dispose()


async def test_explain_on_asyncpg_connects_with_the_engines_connect_args(
    database_url: str, schema: str
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        asyncpg_url(database_url), connect_args={"server_settings": {"search_path": schema}}
    )
    monitor = install_query_monitor(engine, slow_threshold=0.05, explain_slow=True)
    async with engine.connect() as connection:
        (await connection.exec_driver_sql("SELECT id, pg_sleep(0.1) FROM items")).all()
    assert monitor.explainer is not None
    await asyncio.to_thread(monitor.explainer.join, 10)
    (select,) = [s for s in monitor.top(50) if "from items" in s.fingerprint]
    assert isinstance(select.plan, list)
    monitor.remove()
    await engine.dispose()


def test_engine_from_env_on_postgres(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = sa.engine.make_url(database_url).set(password="not-needed-trust-auth")  # noqa: S106
    raw = url.render_as_string(hide_password=False)
    env = {"DATABASE_URL": raw, "DB_POOL_SIZE": "2", "DB_SSL_MODE": "disable"}
    engine = engine_from_env(environ=env)
    monitor = install_query_monitor(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    assert monitor.stats().total_queries >= 1
    monitor.remove()
    engine.dispose()
    # A server without SSL refuses sslmode=require; the error does not carry the password.
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        engine = engine_from_env(environ={**env, "DB_SSL_MODE": "require"})
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    assert "not-needed-trust-auth" not in str(caught.value)
    assert all("not-needed-trust-auth" not in r.getMessage() for r in caplog.records)
    engine.dispose()


async def test_engine_from_env_async_on_postgres(database_url: str) -> None:
    url = sa.engine.make_url(database_url).set(drivername="postgresql")
    engine = engine_from_env(
        url.render_as_string(hide_password=False), async_=True, environ={"DB_SSL_MODE": "disable"}
    )
    async with engine.connect() as connection:
        assert (await connection.exec_driver_sql("SELECT 1")).scalar() == 1
    await engine.dispose()


def test_timings_are_wall_clock(pg: Any) -> None:
    monitor = install_query_monitor(pg)
    started = time.perf_counter()
    with pg.connect() as connection:
        connection.exec_driver_sql("SELECT pg_sleep(0.2)")
    elapsed = time.perf_counter() - started
    (row,) = monitor.top(1)
    assert 0.2 <= row.total_time <= elapsed
    monitor.remove()
