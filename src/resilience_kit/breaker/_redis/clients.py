"""The redis-py clients a storage talks through: the user's, or one built from a URL.

A client passed in is used as it is (its timeouts, its retry policy). A URL gets a client built
here with short timeouts and no command retries: the storage's own health guard stands between
callers and a slow or dead Redis, and a retry inside the client would only multiply the time a
caller waits before the guard can act.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = [
    "TIMEOUT",
    "is_async_client",
    "is_cluster_client",
    "listener_client",
    "make_client",
]

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


def listener_client(client: Any) -> Callable[[], Any] | None:
    """What makes the sync client of the subscriber thread, or ``None`` when none can be had.

    A sync client (standalone, Sentinel or Cluster) subscribes through itself. An asyncio
    client lends its connection settings to a private sync client of the same kind
    (subscribing needs a connection of its own anyway, and a thread needs no event loop): to
    the same server, through the same sentinels to the same master, or to the same Cluster's
    nodes. A client whose connections are of a class of its own (TLS, say) gets none: there is
    nothing to copy safely, and its breakers resynchronise by polling.
    """
    if not is_async_client(client):
        return lambda: client
    if is_cluster_client(client):
        return _cluster_twin(client)
    import redis.asyncio.connection as connections
    import redis.asyncio.sentinel as sentinels

    pool = getattr(client, "connection_pool", None)
    settings = getattr(pool, "connection_kwargs", None)
    if not isinstance(settings, dict):
        return None
    if isinstance(pool, sentinels.SentinelConnectionPool):
        return _sentinel_twin(pool, settings)
    known = (connections.Connection, connections.UnixDomainSocketConnection)
    if getattr(pool, "connection_class", None) not in known:
        return None  # TLS, or a connection class of its own: nothing to copy safely
    import redis

    options = _credentials(settings)
    if "path" in settings:
        options["unix_socket_path"] = settings["path"]
    else:
        options.update(host=settings.get("host", "localhost"), port=settings.get("port", 6379))
    return lambda: redis.Redis(**options, **_SHORT)


_SHORT: dict[str, Any] = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}


def _credentials(settings: dict[str, Any]) -> dict[str, Any]:
    """The database and credentials among an asyncio client's connection settings, with no
    command retries (the health guard decides when to try again)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    wanted = ("db", "username", "password")
    options = {key: settings[key] for key in wanted if settings.get(key) is not None}
    options["retry"] = Retry(NoBackoff(), 0)
    return options


def _sentinel_twin(pool: Any, settings: dict[str, Any]) -> Callable[[], Any] | None:
    """A sync client of the master an asyncio Sentinel pool serves, through its sentinels."""
    import redis.sentinel

    sentinel_class: Any = redis.sentinel.Sentinel  # redis-py leaves it untyped
    manager = pool.sentinel_manager
    addresses = []
    for sentinel in manager.sentinels:
        where = getattr(sentinel.connection_pool, "connection_kwargs", {})
        if "host" not in where:
            return None
        addresses.append((where["host"], where.get("port", 26379)))
    sentinel_options = {
        key: value
        for key, value in manager.sentinel_kwargs.items()
        if key in ("username", "password", "db")
    }
    credentials = _credentials(settings)
    found = sentinel_class(addresses, sentinel_kwargs={**sentinel_options, **_SHORT}, **_SHORT)
    return lambda: found.master_for(pool.service_name, **credentials)


def _cluster_twin(client: Any) -> Callable[[], Any] | None:
    """A sync Cluster client on the nodes an asyncio Cluster client knows."""
    import redis.asyncio.connection as connections
    import redis.cluster

    node_class: Any = redis.cluster.ClusterNode  # redis-py leaves it untyped

    settings = getattr(client, "connection_kwargs", None)
    if not isinstance(settings, dict) or settings.get("connection_class") not in (
        None,
        connections.Connection,
    ):
        return None  # TLS, or a connection class of its own: nothing to copy safely
    known = client.get_nodes() or client.startup_nodes
    nodes = [node_class(node.host, node.port) for node in known]
    options = _credentials(settings)
    options.pop("db", None)
    # Building it asks the nodes for the slots: only when the subscriber thread calls this.
    return lambda: redis.cluster.RedisCluster(startup_nodes=nodes, **options, **_SHORT)
