"""engine_from_env: an engine configured by the deployment's environment variables."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resilience_kit._env import env_value, parse_choice, parse_float, parse_int
from resilience_kit._redact import redact, redact_url
from resilience_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["engine_from_env"]

LOGGER = logging.getLogger("resilience_kit.sql")

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_POOL_VARIABLES = {
    "pool_size": "DB_POOL_SIZE",
    "max_overflow": "DB_MAX_OVERFLOW",
    "pool_timeout": "DB_POOL_TIMEOUT",
}


def engine_from_env(
    url: str | None = None,
    *,
    async_: bool = False,
    environ: Mapping[str, str] | None = None,
    pool_pre_ping: bool = True,
    **engine_options: Any,
) -> Any:
    """An `Engine` (or `AsyncEngine` with `async_=True`) configured from the environment.

    | Variable | Meaning | Default |
    |---|---|---|
    | `DATABASE_URL` | the database URL (used when `url` is not given) | required |
    | `DB_POOL_SIZE` | connections kept open, int >= 1 | SQLAlchemy's (5) |
    | `DB_MAX_OVERFLOW` | extra connections under load, int >= 0 | SQLAlchemy's (10) |
    | `DB_POOL_TIMEOUT` | seconds to wait for a connection, > 0 | SQLAlchemy's (30) |
    | `DB_POOL_RECYCLE` | seconds before a connection is replaced, int >= -1 (-1: never) | -1 |
    | `DB_SSL_MODE` | PostgreSQL `sslmode`: `disable` ... `verify-full` | the driver's |
    | `DB_ECHO` | log every statement: true/false (also 1/0, yes/no, on/off) or `debug` | false |

    A URL without a driver gets one: `postgresql://` (or Heroku's `postgres://`) becomes
    `postgresql+asyncpg://` with `async_=True`, and `postgresql+psycopg://` otherwise when
    psycopg 3 is installed; `sqlite://` becomes `sqlite+aiosqlite://` with `async_=True`.
    `pool_pre_ping` is on by default (a connection dropped by the server is replaced before a
    statement fails on it). Extra keyword arguments go to `create_engine` and win over the
    environment.

    The URL's password never appears in a log line, an error or the engine's `repr`.

    Raises:
        ConfigurationError: `DATABASE_URL` is missing or unparsable, or a variable holds a
            value outside its range; the message names the variable.
    """
    env = os.environ if environ is None else environ
    raw_url = url if url is not None else env_value(env, "DATABASE_URL")
    if raw_url is None:
        raise ConfigurationError(
            "DATABASE_URL is not set (and no url was given)", parameter="DATABASE_URL"
        )
    parsed = _parse_url(raw_url, async_=async_)
    options = _options_from_env(env, parsed)
    options["pool_pre_ping"] = pool_pre_ping
    options.update(engine_options)
    LOGGER.debug(
        "engine_from_env: %s with %s",
        parsed.render_as_string(hide_password=True),
        {k: v for k, v in options.items() if k != "connect_args"},
    )
    try:
        if async_:
            from sqlalchemy.ext.asyncio import create_async_engine

            engine: Engine | AsyncEngine = create_async_engine(parsed, **options)
        else:
            from sqlalchemy import create_engine

            engine = create_engine(parsed, **options)
    except (TypeError, ValueError, ImportError) as error:
        text = redact(str(error).replace(raw_url, redact_url(raw_url)))
        variable = next(
            (var for option, var in _POOL_VARIABLES.items() if option in text), "DATABASE_URL"
        )
        raise ConfigurationError(
            f"{variable}: cannot create an engine for "
            f"{parsed.render_as_string(hide_password=True)}: {text}",
            parameter=variable,
        ) from None
    return engine


def _parse_url(raw: str, *, async_: bool) -> URL:
    from sqlalchemy.engine import make_url

    text = raw.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        url = make_url(text)
    except Exception:
        # The text is not echoed: where a password sits in a malformed URL is anyone's guess.
        raise ConfigurationError(
            "DATABASE_URL must be a database URL such as "
            f"'postgresql://user:password@host:5432/name', got an unparsable value "
            f"({len(raw)} characters, not shown: it may hold a password)",
            parameter="DATABASE_URL",
        ) from None
    query_password = url.query.get("password")
    if isinstance(query_password, str) and url.password is None:
        # "?password=..." is a libpq keyword; as the URL's password SQLAlchemy hides it in
        # every rendering (repr, logs, errors), as a query parameter it would show it.
        url = url.difference_update_query(["password"]).set(password=query_password)
    backend, _, driver = url.drivername.partition("+")
    if not driver:
        if backend == "postgresql":
            if async_:
                url = url.set(drivername="postgresql+asyncpg")
            elif importlib.util.find_spec("psycopg") is not None:
                url = url.set(drivername="postgresql+psycopg")
        elif backend == "sqlite" and async_:
            url = url.set(drivername="sqlite+aiosqlite")
    return url


def _options_from_env(env: Mapping[str, str], url: URL) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if (raw := env_value(env, "DB_POOL_SIZE")) is not None:
        options["pool_size"] = parse_int("DB_POOL_SIZE", raw, minimum=1)
    if (raw := env_value(env, "DB_MAX_OVERFLOW")) is not None:
        options["max_overflow"] = parse_int("DB_MAX_OVERFLOW", raw, minimum=0)
    if (raw := env_value(env, "DB_POOL_TIMEOUT")) is not None:
        options["pool_timeout"] = parse_float("DB_POOL_TIMEOUT", raw, minimum=0, strict=True)
    if (raw := env_value(env, "DB_POOL_RECYCLE")) is not None:
        options["pool_recycle"] = parse_int("DB_POOL_RECYCLE", raw, minimum=-1)
    if (raw := env_value(env, "DB_ECHO")) is not None:
        echo = parse_choice("DB_ECHO", raw, (*_TRUE, *_FALSE, "debug"))
        options["echo"] = "debug" if echo == "debug" else echo in _TRUE
    if (raw := env_value(env, "DB_SSL_MODE")) is not None:
        mode = parse_choice("DB_SSL_MODE", raw, SSL_MODES)
        backend, _, driver = url.drivername.partition("+")
        if backend != "postgresql":
            raise ConfigurationError(
                f"DB_SSL_MODE applies to PostgreSQL only, got {mode!r} for a {backend} URL",
                parameter="DB_SSL_MODE",
                value=mode,
            )
        # asyncpg takes the libpq mode names as its `ssl` argument; the others take `sslmode`.
        options["connect_args"] = {"ssl" if driver == "asyncpg" else "sslmode": mode}
    return options
