"""The fleet scenario of test_shared_fleet on a local 3-master Redis Cluster.

Every key of one breaker carries one hash tag, so its Lua script runs on one node; different
breakers spread over the masters; announcements are cluster-wide pub/sub.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from shared_fleet import run_fleet

from resilience_kit import CircuitBreaker, CircuitState, RedisStorage

PrivateCluster = Any  # the fixtures' types live in conftest.py


@pytest.fixture
def cluster_client(module_redis_cluster: PrivateCluster) -> Iterator[object]:
    from redis.cluster import RedisCluster

    client = RedisCluster(
        host="127.0.0.1", port=module_redis_cluster.servers[0].port, socket_timeout=5
    )
    yield client
    client.close()


def test_four_processes_share_one_circuit_on_a_cluster(
    module_redis_cluster, cluster_client
) -> None:
    spec = {
        "cluster_port": module_redis_cluster.servers[0].port,
        "prefix": f"cluster-{uuid.uuid4().hex[:8]}",
        "name": "payments",
    }
    run_fleet(spec, cluster_client)


def test_breakers_spread_over_the_masters_each_in_one_slot(cluster_client) -> None:
    from redis.cluster import RedisCluster

    assert isinstance(cluster_client, RedisCluster)
    prefix = f"spread-{uuid.uuid4().hex[:8]}"
    storage = RedisStorage(cluster_client, prefix=prefix)
    names = [f"dep{index}" for index in range(12)]
    breakers = [
        CircuitBreaker(name, failure_threshold=1, failure_rate=None, storage=storage)
        for name in names
    ]
    try:
        for breaker in breakers:
            with pytest.raises(ValueError, match="down"):
                breaker.call(_boom)
            assert breaker.state is CircuitState.OPEN
        nodes = set()
        for name in names:
            tag = "{" + f"{prefix}:breaker:{name}" + "}"
            slot = cluster_client.keyslot(f"{tag}:state")
            assert cluster_client.keyslot(f"{tag}:window") == slot
            assert cluster_client.keyslot(f"{tag}:leases") == slot
            nodes.add(cluster_client.get_node_from_key(f"{tag}:state").name)
            assert cluster_client.hget(f"{tag}:state", "s") == b"OPEN"
        assert len(nodes) > 1
    finally:
        for breaker in breakers:
            breaker.unregister()
        storage.close()


def _boom() -> None:
    raise ValueError("down")
