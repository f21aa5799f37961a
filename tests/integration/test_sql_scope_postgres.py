"""N+1 scopes on the real PostgreSQL through asyncpg: lazy loads flagged, eager loads not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from resilience_kit.sql import install_query_monitor

sa = pytest.importorskip("sqlalchemy")
orm = pytest.importorskip("sqlalchemy.orm")
AUTHORS = 12


@pytest.fixture
async def library(database_url: str) -> AsyncIterator[tuple[Any, Any, Any]]:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    suffix = uuid.uuid4().hex[:10]

    class Base(orm.DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = f"rk_authors_{suffix}"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        books: orm.Mapped[list[Book]] = orm.relationship()

    class Book(Base):
        __tablename__ = f"rk_books_{suffix}"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        author_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey(f"{Author.__tablename__}.id"))

    url = sa.engine.make_url(database_url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, pool_size=4)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as session:
        session.add_all([Author(books=[Book(), Book()]) for _ in range(AUTHORS)])
        await session.commit()
    yield engine, Author, Book
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
    await engine.dispose()


def titles_lazily(session: Any, author_class: Any) -> int:
    authors = session.scalars(sa.select(author_class)).all()
    return sum(len(author.books) for author in authors)  # one query per author


async def test_lazy_loads_are_flagged_and_eager_loads_are_not_on_postgres(
    library: tuple[Any, Any, Any],
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    engine, author_class, _ = library
    monitor = install_query_monitor(engine, n_plus_one_threshold=5)

    async def lazy() -> Any:
        async with monitor.scope("lazy") as scope, AsyncSession(engine) as session:
            books = await session.run_sync(titles_lazily, author_class)
            assert books == 2 * AUTHORS
        return scope

    async def eager() -> Any:
        async with monitor.scope("eager") as scope, AsyncSession(engine) as session:
            query = sa.select(author_class).options(orm.selectinload(author_class.books))
            authors = (await session.scalars(query)).all()
            assert sum(len(a.books) for a in authors) == 2 * AUTHORS
        return scope

    lazy_scope, eager_scope = await asyncio.gather(lazy(), eager())
    assert lazy_scope.queries == AUTHORS + 1
    (pattern,) = lazy_scope.n_plus_one
    assert pattern.count == AUTHORS
    assert pattern.location is not None
    assert f"{__file__}:{titles_lazily.__code__.co_firstlineno + 2} in " in pattern.location
    assert eager_scope.queries == 2
    assert eager_scope.n_plus_one == ()
    assert monitor.stats().n_plus_one == 1
    monitor.remove()
