"""The fleet scenario of test_shared_fleet on a local 3-master Redis Cluster.

Every key of one breaker carries one hash tag, so its Lua script runs on one node; different
breakers spread over the masters; announcements are cluster-wide pub/sub.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_cluster import LocalCluster
from shared_fleet import run_fleet

from resilience_kit import CircuitBreaker, CircuitState, RedisStorage


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory() as directory:
        cluster = LocalCluster(Path(directory))
        try:
            cluster.start()
        except (FileNotFoundError, RuntimeError) as error:
            cluster.stop()
            from conftest import _unavailable

            _unavailable("a local Redis Cluster", error)
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def cluster_client(local_cluster: LocalCluster) -> Iterator[object]:
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=local_cluster.ports[0], socket_timeout=5)
    yield client
    client.close()


def test_four_processes_share_one_circuit_on_a_cluster(local_cluster, cluster_client) -> None:
    spec = {
        "cluster_port": local_cluster.ports[0],
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
