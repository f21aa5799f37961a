"""Which errors are worth retrying, recognised without importing the libraries that raise them.

The presets must know SQLAlchemy's, redis-py's, httpx's, requests' and aiohttp's errors, yet the
core depends on none of them. So errors are recognised by what they look like: the names and
modules of the classes in their MRO, SQLSTATE codes, and status attributes. A class is matched
by name only within its library's module (``sqlalchemy.exc.TimeoutError``), except for the
DB-API names that PEP 249 makes the same in every driver (``OperationalError``).

These predicates run only after a call has failed, never on the success path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import math
from collections.abc import Iterator
from datetime import timezone

__all__ = [
    "http_status",
    "parse_retry_after",
    "retry_after_from_response",
    "retryable_http_error",
    "transient_database_error",
    "transient_redis_error",
]

# On Python 3.10 the asyncio and futures timeouts are not yet aliases of the builtin.
_TIMEOUTS: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncio.TimeoutError,
    concurrent.futures.TimeoutError,
)
_CONNECTION_OR_TIMEOUT: tuple[type[BaseException], ...] = (ConnectionError, *_TIMEOUTS)


def _classes(error: BaseException) -> Iterator[tuple[str, str]]:
    for cls in type(error).__mro__:
        yield cls.__module__, cls.__name__


# --- databases -------------------------------------------------------------------------------

# Errors in the statement or the data: retrying repeats the same mistake.
_DB_NEVER = frozenset({"IntegrityError", "ProgrammingError", "DataError", "NotSupportedError"})
_DB_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
# SQLSTATE classes that no retry can fix: authorisation, unknown database, syntax/access rules.
_DB_PERMANENT_SQLSTATE_CLASSES = ("28", "3D", "42")


def _sqlstate(error: BaseException) -> str | None:
    # SQLAlchemy keeps the driver's exception in .orig; psycopg 3 and asyncpg call the code
    # .sqlstate, psycopg2 calls it .pgcode.
    for candidate in (getattr(error, "orig", None), error):
        for attribute in ("sqlstate", "pgcode"):
            code = getattr(candidate, attribute, None)
            if isinstance(code, str) and code:
                return code
    return None


def transient_database_error(error: BaseException) -> bool:
    """Whether a database error is worth retrying.

    True for lost or invalidated connections, ``OperationalError`` (SQLAlchemy's and any
    DB-API driver's), SQLAlchemy's ``DisconnectionError`` and pool ``TimeoutError``,
    serialization failures and deadlocks (SQLSTATE 40001 / 40P01), and the builtin
    ``ConnectionError`` / ``TimeoutError``. Never for ``IntegrityError``, ``ProgrammingError``,
    ``DataError`` or ``NotSupportedError``, nor for SQLSTATE classes 28 (authorisation),
    3D (unknown database) and 42 (syntax or access rule). SQLAlchemy need not be installed.
    """
    try:
        names = list(_classes(error))
        if any(name in _DB_NEVER for _, name in names):
            return False
        sqlstate = _sqlstate(error)
        if sqlstate is not None:
            if sqlstate in _DB_TRANSIENT_SQLSTATES:
                return True
            if sqlstate.startswith(_DB_PERMANENT_SQLSTATE_CLASSES):
                return False
        if getattr(error, "connection_invalidated", False) is True:
            return True
        for module, name in names:
            if name == "OperationalError":
                return True
            if module.startswith("sqlalchemy") and name in {"DisconnectionError", "TimeoutError"}:
                return True
        return isinstance(error, _CONNECTION_OR_TIMEOUT)
    except Exception:
        # A hostile exception object (a property that raises) is not worth retrying.
        return False


# --- Redis -----------------------------------------------------------------------------------

_REDIS_MODULES = ("redis", "valkey")
_REDIS_TRANSIENT = frozenset(
    {"ConnectionError", "TimeoutError", "ClusterDownError", "TryAgainError"}
)


# redis-py derives these from ConnectionError, but a wrong password stays wrong.
_REDIS_NEVER = frozenset(
    {"AuthenticationError", "AuthorizationError", "AuthenticationWrongNumberOfArgsError"}
)


def transient_redis_error(error: BaseException) -> bool:
    """Whether a Redis error is worth retrying.

    True for redis-py's (and valkey's) ``ConnectionError`` (including ``BusyLoadingError``,
    but not the authentication errors derived from it), ``TimeoutError``, ``ClusterDownError``
    and ``TryAgainError``, and for the builtin ``ConnectionError`` / ``TimeoutError``.
    redis-py need not be installed.
    """
    redis_names = [name for module, name in _classes(error) if module.startswith(_REDIS_MODULES)]
    if any(name in _REDIS_NEVER for name in redis_names):
        return False
    if isinstance(error, _CONNECTION_OR_TIMEOUT):
        return True
    return any(name in _REDIS_TRANSIENT for name in redis_names)


# --- HTTP ------------------------------------------------------------------------------------

# Transport failures of httpx, requests/urllib3 and aiohttp: the request may not have reached
# the server, or its answer was lost. Matched by class name outside builtins.
_HTTP_TRANSIENT = frozenset(
    {
        "ConnectionError",  # requests
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "TimeoutException",  # httpx
        "Timeout",  # requests
        "ReadError",
        "WriteError",
        "NetworkError",
        "RemoteProtocolError",
        "ChunkedEncodingError",
        "ServerDisconnectedError",  # aiohttp
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ServerConnectionError",
        "ServerTimeoutError",
        "ConnectionTimeoutError",
        "SocketTimeoutError",
    }
)
# Subclasses of the names above that describe a problem a retry cannot fix.
_HTTP_NEVER = frozenset(
    {
        "SSLError",
        "ClientSSLError",
        "ClientConnectorSSLError",
        "ClientConnectorCertificateError",
        "ProxyError",
        "InvalidURL",
        "InvalidSchema",
        "MissingSchema",
        "UnsupportedProtocol",
        "LocalProtocolError",
        "TooManyRedirects",
    }
)


def _attribute(obj: object, name: str) -> object:
    try:
        return getattr(obj, name, None)
    except Exception:
        # httpx raises RuntimeError from some unset properties; an unknown shape is "absent".
        return None


def http_status(error: BaseException) -> int | None:
    """The HTTP status an error carries, if any.

    Looks at ``error.response.status_code`` (httpx, requests), ``error.status`` (aiohttp) and
    ``error.status_code``; returns the first int between 100 and 599.
    """
    for candidate in (
        _attribute(_attribute(error, "response"), "status_code"),
        _attribute(error, "status"),
        _attribute(error, "status_code"),
    ):
        if (
            isinstance(candidate, int)
            and not isinstance(candidate, bool)
            and 100 <= candidate <= 599
        ):
            return int(candidate)
    return None


def retryable_http_error(error: BaseException) -> bool:
    """Whether an HTTP client error is worth retrying.

    True for responses with status 429 or 5xx, for connection errors and timeouts of httpx,
    requests and aiohttp (recognised by class name; none of them is imported), and for the
    builtin ``ConnectionError`` / ``TimeoutError``. False for other statuses, TLS and
    proxy errors, and malformed requests.
    """
    status = http_status(error)
    if status is not None:
        return status == 429 or status >= 500
    names = [name for module, name in _classes(error) if module != "builtins"]
    if any(name in _HTTP_NEVER for name in names):
        return False
    return any(name in _HTTP_TRANSIENT for name in names) or isinstance(
        error, _CONNECTION_OR_TIMEOUT
    )


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Args:
        value: Delay seconds (``"120"``) or an HTTP date (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: The current wall-clock time (seconds since the epoch), for the date form.

    Returns:
        A delay >= 0, or None if the value is neither form.
    """
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def retry_after_from_response(error: BaseException, now: float) -> float | None:
    """The ``Retry-After`` delay of the response an HTTP error carries, if any.

    Reads ``error.response.headers`` (httpx, requests) or ``error.headers`` (aiohttp).

    Args:
        error: The failed call's exception.
        now: The current wall-clock time, for the HTTP-date form.
    """
    for headers in (
        _attribute(_attribute(error, "response"), "headers"),
        _attribute(error, "headers"),
    ):
        getter = _attribute(headers, "get")
        if not callable(getter):
            continue
        for key in ("Retry-After", "retry-after"):
            try:
                raw = getter(key)
            except Exception:
                raw = None
            if isinstance(raw, bytes):
                raw = raw.decode("latin-1")
            if isinstance(raw, str):
                return parse_retry_after(raw, now)
    return None
