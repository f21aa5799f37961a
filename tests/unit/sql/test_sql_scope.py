"""monitor.scope(): per-request counts, N+1 on ORM lazy loads, isolation between tasks."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resilience_kit.sql import QueryMonitor, install_query_monitor

sa = pytest.importorskip("sqlalchemy")
orm = pytest.importorskip("sqlalchemy.orm")


class Base(orm.DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str]
    books: orm.Mapped[list[Book]] = orm.relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    title: orm.Mapped[str]
    author_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("authors.id"))
    author: orm.Mapped[Author] = orm.relationship(back_populates="books")


AUTHORS = 15
SOURCE_LINES = Path(__file__).read_text(encoding="utf-8").splitlines()


def populate(session: Any) -> None:
    for i in range(AUTHORS):
        session.add(Author(name=f"a{i}", books=[Book(title=f"b{i}")]))
    session.commit()


@pytest.fixture
def library() -> Iterator[tuple[Any, QueryMonitor]]:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        populate(session)
    monitor = install_query_monitor(engine, n_plus_one_threshold=10)
    yield engine, monitor
    monitor.remove()
    engine.dispose()


def list_titles_lazily(session: Any) -> list[str]:
    authors = session.scalars(sa.select(Author)).all()
    return [book.title for author in authors for book in author.books]  # one query per author


def list_titles_eagerly(session: Any) -> list[str]:
    query = sa.select(Author).options(orm.selectinload(Author.books))
    return [book.title for author in session.scalars(query).all() for book in author.books]


def test_lazy_load_loop_is_flagged_with_the_application_frame(
    library: tuple[Any, QueryMonitor], caplog: pytest.LogCaptureFixture
) -> None:
    engine, monitor = library
    with (
        caplog.at_level(logging.WARNING, logger="resilience_kit.sql"),
        orm.Session(engine) as session,
        monitor.scope("GET /titles") as scope,
    ):
        assert len(list_titles_lazily(session)) == AUTHORS
    assert scope.queries == AUTHORS + 1
    assert scope.total_time > 0
    (pattern,) = scope.n_plus_one
    assert pattern.count == AUTHORS
    assert pattern.fingerprint.startswith("select books.id")
    assert pattern.location is not None
    # The line of the loop that touches `author.books` (a comprehension frame before 3.12).
    lazy_line = list_titles_lazily.__code__.co_firstlineno + 2
    assert pattern.location.startswith(f"{__file__}:{lazy_line} in ")
    assert monitor.stats().n_plus_one == 1
    (record,) = [r for r in caplog.records if r.getMessage().startswith("N+1 QUERY")]
    assert "GET /titles" in record.getMessage()
    assert f"test_sql_scope.py:{lazy_line}" in record.getMessage()


def test_eager_loading_is_not_flagged(library: tuple[Any, QueryMonitor]) -> None:
    engine, monitor = library
    with orm.Session(engine) as session, monitor.scope("GET /titles") as scope:
        assert len(list_titles_eagerly(session)) == AUTHORS
    assert scope.queries == 2
    assert scope.n_plus_one == ()
    assert monitor.stats().n_plus_one == 0


def test_threshold_none_counts_but_never_flags(library: tuple[Any, QueryMonitor]) -> None:
    engine, _ = library
    monitor = install_query_monitor(engine, n_plus_one_threshold=None)
    with orm.Session(engine) as session, monitor.scope("quiet") as scope:
        list_titles_lazily(session)
    assert scope.queries == AUTHORS + 1
    assert scope.n_plus_one == ()
    monitor.remove()


def test_scopes_nest_and_count_only_their_monitors_engine(
    library: tuple[Any, QueryMonitor],
) -> None:
    engine, monitor = library
    other = sa.create_engine("sqlite://")
    other_monitor = install_query_monitor(other)
    with monitor.scope("outer") as outer:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            with monitor.scope("inner") as inner:
                connection.exec_driver_sql("SELECT 2")
        with other.connect() as connection:
            connection.exec_driver_sql("SELECT 3")  # another engine's statement
    assert (outer.queries, inner.queries) == (2, 1)
    assert other_monitor.stats().total_queries == 1
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 4")  # no scope open any more
    assert outer.queries == 2
    assert outer.elapsed >= inner.elapsed > 0
    other_monitor.remove()
    other.dispose()


def test_threads_each_have_their_own_scope(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db'}", pool_size=4)
    monitor = install_query_monitor(engine)
    results: dict[int, int] = {}
    barrier = threading.Barrier(4)

    def request(n: int) -> None:
        with monitor.scope(f"request {n}") as scope, engine.connect() as connection:
            barrier.wait()
            for _ in range(n):
                connection.exec_driver_sql("SELECT 1")
        results[n] = scope.queries

    threads = [threading.Thread(target=request, args=(n,)) for n in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {1: 1, 2: 2, 3: 3, 4: 4}

    # A thread started with the request's context counts in the request's scope.
    with monitor.scope("fan-out") as scope:
        context = contextvars.copy_context()

        def work() -> None:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")

        worker = threading.Thread(target=context.run, args=(work,))
        worker.start()
        worker.join()
    assert scope.queries == 1
    monitor.remove()
    engine.dispose()


async def test_async_session_tasks_each_have_their_own_scope() -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as session:
        populate_async = [Author(name=f"a{i}", books=[Book(title="t")]) for i in range(AUTHORS)]
        session.add_all(populate_async)
        await session.commit()
    monitor = install_query_monitor(engine, n_plus_one_threshold=10)

    async def lazy_request() -> Any:
        async with monitor.scope("lazy") as scope, AsyncSession(engine) as session:
            # Sync ORM code in SQLAlchemy's greenlet: lazy loads, one query per author.
            assert len(await session.run_sync(list_titles_lazily)) == AUTHORS
        return scope

    async def eager_request() -> Any:
        async with monitor.scope("eager") as scope, AsyncSession(engine) as session:
            query = sa.select(Author).options(orm.selectinload(Author.books))
            assert len((await session.scalars(query)).all()) == AUTHORS
        return scope

    lazy, eager = await asyncio.gather(lazy_request(), eager_request())
    assert lazy.queries == AUTHORS + 1
    assert eager.queries == 2
    (pattern,) = lazy.n_plus_one
    assert pattern.count == AUTHORS
    assert pattern.location is not None
    assert f"{__file__}:{list_titles_lazily.__code__.co_firstlineno + 2} in " in pattern.location
    assert eager.n_plus_one == ()
    monitor.remove()
    await engine.dispose()


async def test_an_await_loop_is_located_in_the_awaiting_coroutine() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    monitor = install_query_monitor(engine, n_plus_one_threshold=3)
    async with monitor.scope("loop") as scope, engine.connect() as connection:
        for i in range(5):
            await connection.execute(sa.text("SELECT :i"), {"i": i})  # the N+1 line
    (pattern,) = scope.n_plus_one
    assert pattern.count == 5
    assert pattern.location is not None
    line = next(
        number
        for number, text in enumerate(SOURCE_LINES, start=1)
        if text.rstrip().endswith("# the N+1 line")
    )
    assert pattern.location == (
        f"{__file__}:{line} in test_an_await_loop_is_located_in_the_awaiting_coroutine"
    )
    monitor.remove()
    await engine.dispose()
