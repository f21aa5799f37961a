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
import re
from collections.abc import Iterator
from datetime import timezone

__all__ = [
    "http_status",
    "parse_retry_after",
    "retry_after_from_response",
    "retryable_http_error",
    "retryable_http_response",
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


def http_status(error: object) -> int | None:
    """The HTTP status an error (or a response) carries, if any.

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


# 408: the server timed out waiting for the request; 429: rate limited; 5xx: the server failed,
# except 501 (the method is not implemented) and 505 (the HTTP version is not supported), which
# no retry changes.
_HTTP_RETRYABLE_STATUSES = frozenset({408, 429})
_HTTP_PERMANENT_5XX = frozenset({501, 505})


def _retryable_status(status: int) -> bool:
    return status in _HTTP_RETRYABLE_STATUSES or (
        500 <= status <= 599 and status not in _HTTP_PERMANENT_5XX
    )


def retryable_http_response(response: object) -> bool:
    """Whether an HTTP response that was returned, not raised, is worth retrying.

    For `RetryPolicy(retry_if_result=...)`: True for status 408, 429, or 5xx except 501 and
    505 (as [retryable_http_error][resilience_kit.retry.retryable_http_error] judges a raised
    one), read from ``response.status_code`` (httpx, requests) or ``response.status``
    (aiohttp). False for any other status, and for a result that carries none.
    """
    status = http_status(response)
    return status is not None and _retryable_status(status)


def retryable_http_error(error: BaseException) -> bool:
    """Whether an HTTP client error is worth retrying.

    True for responses with status 408, 429, or 5xx except 501 and 505, for connection errors
    and timeouts of httpx, requests and aiohttp (recognised by class name; none of them is
    imported), and for the builtin ``ConnectionError`` / ``TimeoutError``. False for other
    statuses, TLS and proxy errors, and malformed requests.
    """
    status = http_status(error)
    if status is not None:
        return _retryable_status(status)
    names = [name for module, name in _classes(error) if module != "builtins"]
    if any(name in _HTTP_NEVER for name in names):
        return False
    return any(name in _HTTP_TRANSIENT for name in names) or isinstance(
        error, _CONNECTION_OR_TIMEOUT
    )


# RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient
# must still accept. Case-sensitive, ASCII digits only.
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"[0-9]{2}:[0-9]{2}:[0-9]{2}"
_HTTP_DATE = re.compile(
    rf"{_DAY}, [0-9]{{2}} {_MONTH} [0-9]{{4}} {_TIME} GMT"
    rf"|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    rf"[0-9]{{2}}-{_MONTH}-[0-9]{{2}} {_TIME} GMT"
    rf"|{_DAY} {_MONTH} (?:[0-9]{{2}}| [0-9]) {_TIME} [0-9]{{4}}"
)


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Accepts only the forms of RFC 9110: delay-seconds, one or more ASCII digits (``"120"``;
    not ``"1.5"``, ``"1e3"``, ``"-3"`` or non-ASCII digits), or an HTTP-date: IMF-fixdate
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``) or the obsolete RFC 850
    (``"Wednesday, 21-Oct-15 07:28:00 GMT"``) and asctime (``"Wed Oct 21 07:28:00 2015"``)
    forms. Surrounding whitespace is ignored.

    Args:
        value: The header's value.
        now: The current wall-clock time (seconds since the epoch), for the date form.

    Returns:
        A delay >= 0 (0 for a date in the past), or None if the value has neither form.
    """
    value = value.strip()
    if value.isascii() and value.isdigit():
        try:
            return float(int(value))
        except (OverflowError, ValueError):  # more digits than a float (or int()) holds
            return None
    if _HTTP_DATE.fullmatch(value) is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # the right shape but no such date (31 Feb)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # asctime carries no zone: it is GMT
    return max(0.0, when.timestamp() - now)


def _header(headers: object, name: str) -> object:
    """A header's value from a case-insensitive mapping (httpx, requests, aiohttp) or a dict."""
    getter = _attribute(headers, "get")
    if not callable(getter):
        return None
    for key in (name, name.lower()):
        try:
            raw = getter(key)
        except Exception:
            raw = None
        if raw is not None:
            return raw
    # A plain dict is case-sensitive, but header names are not (RFC 9110 section 5.1).
    items = _attribute(headers, "items")
    if not callable(items):
        return None
    wanted = name.lower()
    try:
        for key, raw in items():
            text = key.decode("latin-1") if isinstance(key, bytes) else key
            if isinstance(text, str) and text.lower() == wanted:
                return raw
    except Exception:
        return None  # an unknown shape is "absent"
    return None


def retry_after_from_response(error: object, now: float) -> float | None:
    """The ``Retry-After`` delay of the response an HTTP error carries (or of a response).

    Reads ``error.response.headers`` (httpx, requests) or ``error.headers`` (aiohttp, and a
    response itself, which a ``retry_if_result`` retry passes); the header's name is matched
    in any case, even in a plain dict.

    Args:
        error: The failed call's exception.
        now: The current wall-clock time, for the HTTP-date form.
    """
    for headers in (
        _attribute(_attribute(error, "response"), "headers"),
        _attribute(error, "headers"),
    ):
        raw = _header(headers, "Retry-After")
        if isinstance(raw, bytes):
            raw = raw.decode("latin-1")
        if isinstance(raw, str):
            return parse_retry_after(raw, now)
    return None
