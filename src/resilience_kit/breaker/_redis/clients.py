"""The redis-py clients a storage talks through: the user's, or one built from a URL.

A client passed in is used as it is (its timeouts, its retry policy). A URL gets a client built
here with short timeouts and no command retries: the storage's own health guard stands between
callers and a slow or dead Redis, and a retry inside the client would only multiply the time a
caller waits before the guard can act.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["TIMEOUT", "is_async_client", "listener_client", "make_client"]

TIMEOUT = 0.25
"""Seconds a client built from a URL waits to connect or for a reply."""


def make_client(url: str) -> Any:
    """A sync client for ``url`` with `TIMEOUT` and no retries of its own."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def is_async_client(client: Any) -> bool:
    """Whether ``client`` is an asyncio client (its commands return awaitables)."""
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is a redis-py Cluster client (sync or asyncio)."""
    return any(kind.__name__ == "RedisCluster" for kind in type(client).__mro__)


def listener_client(client: Any) -> Any | None:
    """A sync client for the subscriber thread, or ``None`` when none can be had.

    A sync client subscribes through itself. An asyncio client to one server lends its
    connection settings to a private sync client (subscribing needs a connection of its own
    anyway, and a thread needs no event loop); an asyncio Cluster client gets none, and its
    breakers resynchronise by polling.
    """
    if not is_async_client(client):
        return client
    if is_cluster_client(client):
        return None
    import redis.asyncio.connection as connections

    pool = getattr(client, "connection_pool", None)
    settings = getattr(pool, "connection_kwargs", None)
    known = (connections.Connection, connections.UnixDomainSocketConnection)
    if not isinstance(settings, dict) or getattr(pool, "connection_class", None) not in known:
        return None  # TLS, or a connection class of its own: nothing to copy safely
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    wanted = ("host", "port", "db", "username", "password")
    options = {key: settings[key] for key in wanted if key in settings}
    if "path" in settings:
        options["unix_socket_path"] = settings["path"]
    return redis.Redis(
        **options,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
