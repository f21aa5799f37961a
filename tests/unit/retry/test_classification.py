"""Which errors the presets retry: databases, Redis, HTTP clients (none of them imported)."""

from __future__ import annotations

import asyncio

import psycopg.errors
import pytest
import redis.exceptions
import requests
import sqlalchemy.exc

from resilience_kit.retry import (
    http_status,
    retryable_http_error,
    transient_database_error,
    transient_redis_error,
)


def _sa(error_cls: type[sqlalchemy.exc.DBAPIError], orig: Exception, **kw: bool) -> Exception:
    return error_cls("SELECT 1", {}, orig, **kw)


@pytest.mark.parametrize(
    "error",
    [
        _sa(sqlalchemy.exc.OperationalError, psycopg.errors.AdminShutdown("terminating")),
        _sa(sqlalchemy.exc.OperationalError, psycopg.errors.SerializationFailure("could not")),
        _sa(sqlalchemy.exc.OperationalError, psycopg.errors.DeadlockDetected("deadlock")),
        _sa(sqlalchemy.exc.InterfaceError, Exception("closed"), connection_invalidated=True),
        _sa(sqlalchemy.exc.DBAPIError, psycopg.errors.SerializationFailure("could not")),
        sqlalchemy.exc.DisconnectionError("gone"),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        psycopg.OperationalError("connection refused"),
        psycopg.errors.DeadlockDetected("raw driver deadlock"),
        ConnectionResetError("reset"),
        TimeoutError(),
        asyncio.TimeoutError(),
    ],
    ids=repr,
)
def test_transient_database_errors_are_retried(error: Exception) -> None:
    assert transient_database_error(error)


@pytest.mark.parametrize(
    "error",
    [
        _sa(sqlalchemy.exc.IntegrityError, psycopg.errors.UniqueViolation("duplicate key")),
        _sa(sqlalchemy.exc.ProgrammingError, psycopg.errors.UndefinedTable("no such table")),
        _sa(sqlalchemy.exc.DataError, psycopg.errors.InvalidTextRepresentation("bad int")),
        # An OperationalError that no retry fixes: wrong password, unknown database.
        _sa(sqlalchemy.exc.OperationalError, psycopg.errors.InvalidPassword("auth failed")),
        _sa(sqlalchemy.exc.OperationalError, psycopg.errors.InvalidCatalogName("no db")),
        sqlalchemy.exc.ArgumentError("bad url"),
        psycopg.errors.UniqueViolation("duplicate"),
        ValueError("not a database error"),
    ],
    ids=repr,
)
def test_permanent_database_errors_are_not_retried(error: Exception) -> None:
    assert not transient_database_error(error)


def test_psycopg2_style_pgcode_is_read_too() -> None:
    class Psycopg2Error(Exception):
        pgcode = "40001"

    assert transient_database_error(Psycopg2Error())
    Psycopg2Error.pgcode = "23505"
    assert not transient_database_error(Psycopg2Error())


def test_a_hostile_error_object_is_not_retried() -> None:
    class Hostile(Exception):
        @property
        def orig(self) -> object:
            raise RuntimeError("boom")

    assert not transient_database_error(Hostile())


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("loading"),
        redis.exceptions.ClusterDownError("down"),
        ConnectionRefusedError(),
        TimeoutError(),
    ],
    ids=repr,
)
def test_transient_redis_errors_are_retried(error: Exception) -> None:
    assert transient_redis_error(error)


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ResponseError("WRONGTYPE"),
        redis.exceptions.AuthenticationError("bad password"),
        redis.exceptions.DataError("bad value"),
        KeyError("k"),
    ],
    ids=repr,
)
def test_other_redis_errors_are_not_retried(error: Exception) -> None:
    assert not transient_redis_error(error)


def _requests_http_error(status: int, headers: dict[str, str] | None = None) -> Exception:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError(f"{status} error", response=response)


def _lookalike(module: str, name: str, *bases: type[Exception], **attrs: object) -> type[Exception]:
    """A class with the module and name of httpx's or aiohttp's (neither is installed here)."""
    return type(name, bases or (Exception,), {"__module__": module, **attrs})


HttpxTransportError = _lookalike("httpx", "TransportError")
HttpxConnectError = _lookalike(
    "httpx", "ConnectError", _lookalike("httpx", "NetworkError", HttpxTransportError)
)
HttpxReadTimeout = _lookalike(
    "httpx", "ReadTimeout", _lookalike("httpx", "TimeoutException", HttpxTransportError)
)
HttpxUnsupportedProtocol = _lookalike("httpx", "UnsupportedProtocol", HttpxTransportError)
AiohttpClientError = _lookalike("aiohttp.client_exceptions", "ClientError")
AiohttpConnectionError = _lookalike(
    "aiohttp.client_exceptions", "ClientConnectionError", AiohttpClientError
)
AiohttpServerDisconnected = _lookalike(
    "aiohttp.client_exceptions", "ServerDisconnectedError", AiohttpConnectionError
)
AiohttpSSLError = _lookalike("aiohttp.client_exceptions", "ClientSSLError", AiohttpConnectionError)


class HttpxStatusError(Exception):
    """Shaped like httpx.HTTPStatusError: .response.status_code and .response.headers."""

    __module__ = "httpx"

    def __init__(self, status: int) -> None:
        super().__init__(f"Server error '{status}'")
        self.response = type("Response", (), {"status_code": status, "headers": {}})()


class AiohttpResponseError(Exception):
    """Shaped like aiohttp.ClientResponseError: .status and .headers."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
        self.headers = None


@pytest.mark.parametrize(
    "error",
    [
        _requests_http_error(429),
        _requests_http_error(500),
        _requests_http_error(503),
        HttpxStatusError(502),
        AiohttpResponseError(504),
        requests.ConnectionError("refused"),
        requests.Timeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("cut"),
        HttpxConnectError("refused"),
        HttpxReadTimeout("timed out"),
        AiohttpServerDisconnected("gone"),
        ConnectionResetError(),
        TimeoutError(),
    ],
    ids=repr,
)
def test_retryable_http_errors(error: Exception) -> None:
    assert retryable_http_error(error)


@pytest.mark.parametrize(
    "error",
    [
        _requests_http_error(400),
        _requests_http_error(404),
        _requests_http_error(409),
        HttpxStatusError(401),
        AiohttpResponseError(403),
        requests.exceptions.SSLError("certificate verify failed"),
        requests.exceptions.InvalidURL("no host"),
        requests.exceptions.TooManyRedirects(),
        HttpxUnsupportedProtocol("ftp://"),
        AiohttpSSLError("handshake"),
        ValueError("json"),
    ],
    ids=repr,
)
def test_non_retryable_http_errors(error: Exception) -> None:
    assert not retryable_http_error(error)


# The documented table: 408, 429 and 5xx except 501 and 505 are retried; nothing else is.
RETRYABLE_STATUSES = {408, 429} | (set(range(500, 600)) - {501, 505})


@pytest.mark.parametrize("status", range(100, 600))
def test_the_status_table(status: int) -> None:
    for error in (_requests_http_error(status), HttpxStatusError(status)):
        assert retryable_http_error(error) == (status in RETRYABLE_STATUSES), status
    assert retryable_http_error(AiohttpResponseError(status)) == (status in RETRYABLE_STATUSES)


def test_http_status_ignores_attributes_that_are_not_statuses() -> None:
    class Odd(Exception):
        status = "500"
        status_code = True

    class Raising(Exception):
        @property
        def response(self) -> object:
            raise RuntimeError("request not set")

        status_code = 503

    assert http_status(Odd()) is None
    assert http_status(Raising()) == 503
    assert http_status(requests.HTTPError("no response")) is None
