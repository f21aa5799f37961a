"""Engines for the query monitor's unit tests: SQLite, in memory or in a temporary file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")


@pytest.fixture
def engine() -> Iterator[Any]:
    """An in-memory SQLite engine with a table `items(id, name, password)`."""
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, password TEXT)"
        )
    yield engine
    engine.dispose()


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Any]:
    """A SQLite file engine on a QueuePool of one connection and no overflow."""
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0, pool_timeout=5
    )
    yield engine
    engine.dispose()


@pytest.fixture
def listener_state() -> Any:
    """The function below, for tests comparing an engine before and after."""
    return _listener_state


def _listener_state(engine: Any) -> dict[str, Any]:
    """Every listener collection an install could touch, and the pool's own attributes."""
    sync = getattr(engine, "sync_engine", engine)
    state: dict[str, Any] = {}
    for owner, dispatch in (
        ("engine", sync.dispatch),
        ("dialect", sync.dialect.dispatch),
        ("pool", sync.pool.dispatch),
    ):
        for name in dispatch._event_names:
            state[f"{owner}.{name}"] = list(getattr(dispatch, name))
    state["engine._has_events"] = sync._has_events
    state["dialect._has_events"] = sync.dialect._has_events
    state["pool.own"] = {
        name: vars(sync.pool).get(name) for name in ("_do_get", "_create_connection")
    }
    state["dialect.own"] = {
        name: vars(sync.dialect).get(name)
        for name in ("_has_events", "do_execute", "do_executemany", "do_execute_no_params")
    }
    return state
