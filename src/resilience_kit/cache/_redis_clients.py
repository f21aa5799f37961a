"""The redis-py clients a [RedisBackend][resilience_kit.cache.RedisBackend] talks through.

A client passed in is used as it is, never reconfigured. A URL gets a sync client and, per
event loop, an asyncio one, built here with short socket timeouts and no command retries of
their own: the backend's breaker does that job. A client that decodes responses to str is
refused (entries are bytes). A caller that finds redis-py's connection pool full waits for a
free connection, up to the socket timeout, instead of failing at once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from resilience_kit.errors import ConfigurationError

__all__ = ["RedisClients"]

_FIRST_WAIT = 0.0005  # seconds before a caller that found the pool full tries again


def _pool_limits() -> tuple[type[BaseException], ...]:
    """redis-py's error for a client whose connection pool is full (redis-py 5.1 and later).

    Not Redis failing: a caller waits for a connection (up to the socket timeout), and if none
    frees up the default breaker lets the error through uncounted (the call is still a miss),
    so a burst of callers cannot switch the cache off.
    """
    try:
        from redis.exceptions import MaxConnectionsError
    except ImportError:  # pragma: no cover - older redis-py raises a plain ConnectionError
        return ()
    return (MaxConnectionsError,)


def _is_async_client(client: Any) -> bool:
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - redis is what made the client
        return False
    kinds: tuple[type, ...] = (redis.asyncio.Redis,)
    cluster = getattr(redis.asyncio, "RedisCluster", None)
    if cluster is not None:
        kinds += (cluster,)
    return isinstance(client, kinds)


def _url_client(url: str) -> Any:
    """A sync client made from ``url`` (no connection yet): what the URL asks for, checked.

    Raises:
        ConfigurationError: redis-py cannot read ``url`` (a port or an option is not a number).
    """
    import redis

    try:
        return redis.Redis.from_url(url)
    except ValueError as error:
        raise ConfigurationError(
            f"client_or_url is not a URL redis-py can read ({error}), got {url!r}",
            parameter="client_or_url",
            value=url,
        ) from None


def _decodes_responses(client: Any) -> bool:
    """Whether ``client`` turns replies into str: entries are bytes, so it would fail every
    read and the cache would never hit."""
    encoder = getattr(client, "get_encoder", None)
    try:
        return encoder is not None and bool(encoder().decode_responses)
    except Exception:  # not redis-py's: nothing to tell
        return False


class RedisClients:
    """One backend's clients: the sync or asyncio client it was given, or those of a URL.

    Attributes:
        url: The URL clients are built from (None when a client was given).
        client: The sync client (given, or built from the URL on first use; None before).
        given_async: The asyncio client given (None otherwise).
        native_async: Whether there is an asyncio client for async code (given, or a URL).
        sync_capable: Whether there is a sync client for sync code (given, or a URL).
        pool_full: The errors of a client whose connection pool is full.

    Raises:
        ConfigurationError: ``client_or_url`` is neither a redis-py client nor a Redis URL,
            or it decodes responses to str (``decode_responses=True``).
    """

    __slots__ = (
        "_async_clients",
        "_last",
        "client",
        "given_async",
        "native_async",
        "pool_full",
        "sync_capable",
        "timeout",
        "url",
    )

    def __init__(self, client_or_url: Any, timeout: float) -> None:
        self.timeout = timeout
        self.url: str | None = None
        self.client: Any = None
        self.given_async: Any = None
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._last: tuple[Any, Any] | None = None
        if isinstance(client_or_url, str):
            if not client_or_url.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    f"client_or_url must be a redis-py client or a redis://, rediss:// or unix:// "
                    f"URL, got {client_or_url!r}",
                    parameter="client_or_url",
                    value=client_or_url,
                )
            self.url = client_or_url
        elif _is_async_client(client_or_url):
            self.given_async = client_or_url
        elif callable(getattr(client_or_url, "mget", None)):
            self.client = client_or_url
        else:
            raise ConfigurationError(
                f"client_or_url must be a redis-py client or a URL, got {client_or_url!r}",
                parameter="client_or_url",
                value=client_or_url,
            )
        probe = _url_client(client_or_url) if self.url is not None else client_or_url
        if _decodes_responses(probe):
            raise ConfigurationError(
                "client_or_url must not decode responses (decode_responses=True): cache entries "
                f"are bytes; give a client made without it, got {client_or_url!r}",
                parameter="client_or_url",
                value=client_or_url,
            )
        self.native_async = self.url is not None or self.given_async is not None
        self.sync_capable = self.url is not None or self.client is not None
        self.pool_full = _pool_limits()

    def _options(self) -> dict[str, Any]:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
        }

    def sync_client(self) -> Any:
        """The sync client (built from the URL on first use).

        Raises:
            ConfigurationError: There is only an asyncio client.
        """
        client = self.client
        if client is None:
            if self.url is None:
                raise ConfigurationError(
                    "this RedisBackend has only an asyncio client; a def function needs a sync "
                    "client or a URL",
                    parameter="client_or_url",
                    value=self.given_async,
                )
            import redis

            client = self.client = redis.Redis.from_url(self.url, **self._options())
        return client

    def async_client(self) -> Any:
        """The asyncio client for the running loop (built from the URL once per loop)."""
        if self.given_async is not None:
            return self.given_async
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        client = self._async_clients.get(loop)
        if client is None:
            if self.url is None:
                return None
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(self.url, **self._options())
            self._async_clients[loop] = client
        # The last loop and its client, for the hot path (until another loop replaces them).
        self._last = (loop, client)
        return client

    def command(self, call: Callable[[Any], Any]) -> Any:
        """``call(client)`` with the sync client, waiting for a connection if the pool is full."""
        try:
            return call(self.sync_client())
        except self.pool_full:
            return self.patiently(call)

    async def acommand(self, call: Callable[[Any], Awaitable[Any]]) -> Any:
        """[command][resilience_kit.cache._redis_clients.RedisClients.command], awaitable."""
        try:
            return await call(self.async_client())
        except self.pool_full:
            return await self.apatiently(call)

    def patiently(self, call: Callable[[Any], Any]) -> Any:
        """``call(client)`` once the client's connection pool has a free connection.

        A burst of callers (redis-py's pools hold 100 connections by default) waits, with
        growing pauses, up to the socket timeout; then the pool's error stands (a miss).
        """
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_WAIT
        while True:
            time.sleep(pause)
            try:
                return call(self.sync_client())
            except self.pool_full:
                if time.monotonic() >= deadline:
                    raise
            pause = min(pause * 2, 0.01)

    async def apatiently(self, call: Callable[[Any], Awaitable[Any]]) -> Any:
        """[patiently][resilience_kit.cache._redis_clients.RedisClients.patiently], awaitable."""
        deadline = time.monotonic() + self.timeout
        pause = _FIRST_WAIT
        while True:
            await asyncio.sleep(pause)
            try:
                return await call(self.async_client())
            except self.pool_full:
                if time.monotonic() >= deadline:
                    raise
            pause = min(pause * 2, 0.01)

    def close(self) -> None:
        """Close the sync client built from the URL (a client passed in is the caller's)."""
        if self.url is not None and self.client is not None:
            self.client.close()
            self.client = None

    async def aclose(self) -> None:
        """Close the clients built from the URL, the running loop's included."""
        self.close()
        if self.url is not None:
            loop = asyncio.get_running_loop()
            client = self._async_clients.pop(loop, None)
            self._last = None
            if client is not None:
                await client.aclose()
