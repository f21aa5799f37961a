"""The real servers the integration suite relies on answer as expected."""

from __future__ import annotations

import sqlalchemy as sa


def test_redis_round_trip(redis_client) -> None:  # type: ignore[no-untyped-def]
    redis_client.set("rk:probe", "1")
    assert redis_client.get("rk:probe") == b"1"


def test_postgres_round_trip(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT 40 + 2")).scalar_one() == 42
    engine.dispose()


def test_private_redis_can_be_killed_and_restarted(private_redis) -> None:  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(private_redis.url, socket_timeout=1)
    client.set("k", "v")
    private_redis.stop()
    try:
        client.ping()
        raise AssertionError("the killed server still answered")
    except redis.ConnectionError:
        pass
    private_redis.start()
    assert client.ping() is True
    assert client.get("k") is None  # a fresh server keeps nothing
    client.close()
