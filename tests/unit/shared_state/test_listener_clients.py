"""Which sync client the subscriber thread of a storage gets, for each kind of client."""

from __future__ import annotations

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel

from resilience_kit.breaker._redis.clients import listener_client


def test_a_sync_client_subscribes_through_itself() -> None:
    client = redis.Redis(port=1)
    make = listener_client(client)
    assert make is not None
    assert make() is client


def test_an_asyncio_client_lends_its_settings_to_a_sync_twin() -> None:
    client = redis.asyncio.Redis(host="10.1.2.3", port=6380, db=4, password="secret")  # noqa: S106 - a test value
    make = listener_client(client)
    assert make is not None
    twin = make()
    try:
        assert isinstance(twin, redis.Redis)
        settings = twin.connection_pool.connection_kwargs
        assert (settings["host"], settings["port"], settings["db"]) == ("10.1.2.3", 6380, 4)
        assert settings["password"] == "secret"  # noqa: S105 - a test value
        assert settings["socket_timeout"] == 0.25
    finally:
        twin.close()


def test_an_asyncio_sentinel_master_gets_a_sync_master_through_the_same_sentinels() -> None:
    sentinel = redis.asyncio.sentinel.Sentinel([("10.0.0.5", 26379), ("10.0.0.6", 26380)])
    make = listener_client(sentinel.master_for("mymaster", db=2))
    assert make is not None
    twin = make()
    pool = twin.connection_pool
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 2
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ]
    assert addresses == [("10.0.0.5", 26379), ("10.0.0.6", 26380)]


def test_an_asyncio_cluster_client_gets_a_maker_of_a_sync_cluster_client() -> None:
    client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=7000)
    assert callable(listener_client(client))  # called in the thread: it asks the nodes


def test_a_tls_client_gets_none_and_its_breakers_poll() -> None:
    assert listener_client(redis.asyncio.Redis(ssl=True)) is None
    tls_cluster = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=7000, ssl=True)
    assert listener_client(tls_cluster) is None


def test_a_url_gets_a_client_with_short_timeouts_and_no_retries() -> None:
    from resilience_kit import RedisStorage

    storage = RedisStorage("redis://10.1.2.3:6380/4")  # connects to nothing until used
    settings = storage.client.connection_pool.connection_kwargs
    assert (settings["host"], settings["port"], settings["db"]) == ("10.1.2.3", 6380, 4)
    assert settings["socket_timeout"] == settings["socket_connect_timeout"] == 0.25
    assert settings["retry_on_timeout"] is False
    assert storage.client.get_retry()._retries == 0


def test_a_client_passed_in_is_used_as_it_is() -> None:
    from resilience_kit import RedisStorage

    client = redis.Redis(port=1, socket_timeout=5)
    settings, retry = dict(client.connection_pool.connection_kwargs), client.get_retry()
    storage = RedisStorage(client)
    assert storage.client is client
    assert client.connection_pool.connection_kwargs == settings
    assert client.get_retry() is retry
