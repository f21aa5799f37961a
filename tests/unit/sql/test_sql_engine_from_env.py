"""engine_from_env: pool settings from the environment, errors naming the variable, no leaks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from resilience_kit import ConfigurationError
from resilience_kit.sql import engine_from_env

sa = pytest.importorskip("sqlalchemy")
SECRET = "pa55-w0rd"  # noqa: S105 - the test checks it never shows


def sqlite_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'db'}", **variables}


def test_pool_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = sqlite_env(
        tmp_path,
        DB_POOL_SIZE="7",
        DB_MAX_OVERFLOW="3",
        DB_POOL_TIMEOUT="2.5",
        DB_POOL_RECYCLE="1800",
        DB_ECHO="false",
    )
    engine = engine_from_env(environ=env)
    pool = engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (7, 3, 2.5, 1800)
    assert pool._pre_ping is True
    assert engine.echo is False
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def test_unset_and_blank_variables_leave_sqlalchemy_defaults(tmp_path: Path) -> None:
    engine = engine_from_env(environ=sqlite_env(tmp_path, DB_POOL_SIZE="  "))
    assert (engine.pool.size(), engine.pool._max_overflow) == (5, 10)
    engine.dispose()


def test_explicit_url_and_keyword_options_win(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///ignored.db", "DB_POOL_SIZE": "7"}
    engine = engine_from_env(f"sqlite:///{tmp_path / 'x'}", environ=env, pool_size=2)
    assert engine.url.database == str(tmp_path / "x")
    assert engine.pool.size() == 2
    engine.dispose()


@pytest.mark.parametrize("value", ["true", "1", "YES", "on"])
def test_db_echo_true_spellings(tmp_path: Path, value: str) -> None:
    engine = engine_from_env(environ=sqlite_env(tmp_path, DB_ECHO=value))
    assert engine.echo is True
    engine.dispose()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_SIZE", "ten"),
        ("DB_MAX_OVERFLOW", "-1"),
        ("DB_POOL_TIMEOUT", "0"),
        ("DB_POOL_TIMEOUT", "nan"),
        ("DB_POOL_RECYCLE", "-2"),
        ("DB_POOL_RECYCLE", "1.5"),
        ("DB_ECHO", "maybe"),
        ("DB_SSL_MODE", "sometimes"),
        ("DB_SSL_MODE", "require"),  # valid, but SQLite has no SSL
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable) as caught:
        engine_from_env(environ=sqlite_env(tmp_path, **{variable: value}))
    assert caught.value.parameter == variable


def test_missing_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        engine_from_env(environ={})


def test_the_password_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://app:{SECRET}@db.invalid:5432/prod"
    with caplog.at_level(logging.DEBUG, logger="resilience_kit.sql"):
        engine = engine_from_env(url, environ={"DB_POOL_SIZE": "3"})
    assert SECRET not in repr(engine)
    assert SECRET not in str(engine.url)
    assert engine.url.password == SECRET  # still there to connect with
    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    engine.dispose()
    for bad in (f"not a url {SECRET}", f"postgresql://app:{SECRET}@db:notaport/x"):
        with pytest.raises(ConfigurationError, match="DATABASE_URL") as caught:
            engine_from_env(environ={"DATABASE_URL": bad})
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value.value)
    with pytest.raises(ConfigurationError, match="DB_POOL_SIZE") as caught:
        engine_from_env(url, environ={"DB_POOL_SIZE": "x"})
    assert SECRET not in str(caught.value)


def test_a_password_given_as_a_query_parameter_never_shows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"postgresql+psycopg://app@db.invalid:5432/prod?password={SECRET}&application_name=x"
    with caplog.at_level(logging.DEBUG, logger="resilience_kit.sql"):
        engine = engine_from_env(url)
    assert SECRET not in repr(engine)
    assert SECRET not in str(engine.url)
    assert engine.url.password == SECRET  # still there to connect with
    assert engine.url.query == {"application_name": "x"}
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    engine.dispose()
    with pytest.raises(ConfigurationError) as caught:
        engine_from_env(url, bogus_option=1)
    assert SECRET not in str(caught.value)


def test_driverless_urls_get_a_driver() -> None:
    sync = engine_from_env(f"postgres://app:{SECRET}@db.invalid/prod", environ={})
    assert sync.url.drivername == "postgresql+psycopg"
    sync.dispose()
    asynchronous = engine_from_env("postgresql://app@db.invalid/prod", async_=True, environ={})
    assert asynchronous.url.drivername == "postgresql+asyncpg"
    assert type(asynchronous).__name__ == "AsyncEngine"


def test_ssl_mode_goes_to_the_driver_argument() -> None:
    # Recorded at connect time: the dialect hands `connect_args` to the DBAPI's connect().
    seen: dict[str, Any] = {}

    class Captured(Exception):
        pass

    def capture(dialect: Any, record: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.update(kwargs)
        raise Captured

    for url, key in (
        ("postgresql+psycopg://app@db.invalid/x", "sslmode"),
        ("postgresql+asyncpg://app@db.invalid/x", "ssl"),
    ):
        engine = engine_from_env(url, environ={"DB_SSL_MODE": "verify-full"})
        sync = getattr(engine, "sync_engine", engine)
        sa.event.listen(sync, "do_connect", capture)
        with pytest.raises(Captured):
            sync.connect()
        assert seen.get(key) == "verify-full"
        seen.clear()


def test_a_pool_setting_the_pool_class_refuses_names_its_variable() -> None:
    # In-memory SQLite uses a SingletonThreadPool, which has no overflow.
    with pytest.raises(ConfigurationError, match="DB_MAX_OVERFLOW") as caught:
        engine_from_env("sqlite://", environ={"DB_MAX_OVERFLOW": "3"})
    assert caught.value.parameter == "DB_MAX_OVERFLOW"
