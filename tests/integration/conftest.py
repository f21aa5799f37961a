"""Connections to the real PostgreSQL and Redis servers, and private Redis servers to kill.

``REDIS_URL`` and ``DATABASE_URL`` choose the servers (the machine's local ones by default).
An unreachable server skips the test with the reason, unless
``RESILIENCE_KIT_REQUIRE_SERVICES=1``: then it fails, so CI can never pass on skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("RESILIENCE_KIT_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _unavailable(what: str, error: BaseException) -> None:
    reason = f"{what} is unreachable ({type(error).__name__}: {error})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; RESILIENCE_KIT_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (db 15 unless ``REDIS_URL`` says otherwise)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as error:
        _unavailable(f"Redis at {REDIS_URL}", error)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    """A sync client on the real Redis; its database is flushed before and after the test."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def database_url() -> str:
    """SQLAlchemy URL of a reachable PostgreSQL."""
    import sqlalchemy as sa

    engine = sa.create_engine(DATABASE_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        _unavailable(f"PostgreSQL at {DATABASE_URL}", error)
    finally:
        engine.dispose()
    return DATABASE_URL


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server of the test's own, on a free loopback port, that the test may kill."""

    port: int
    directory: str
    process: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server binary", FileNotFoundError("redis-server"))
        self.process = subprocess.Popen(
            [
                binary or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A running redis-server of this test's own; never the machine's shared one."""
    with tempfile.TemporaryDirectory() as directory:
        server = PrivateRedis(port=_free_port(), directory=directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _free_cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20_000, 29_999)
        try:
            with socket.socket() as one, socket.socket() as bus:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class PrivateCluster:
    """A local Redis Cluster of this test's own: three masters, no replicas, free ports."""

    servers: list[PrivateRedis]

    @property
    def nodes(self) -> list[tuple[str, int]]:
        """The startup nodes, as ``(host, port)``."""
        return [("127.0.0.1", server.port) for server in self.servers]

    def client(self, **options: object) -> object:
        """A sync ``redis.RedisCluster`` on it."""
        import redis
        from redis.cluster import ClusterNode

        return redis.RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.nodes], **options
        )

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Wait until every node reports ``cluster_state:ok``."""
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for server in self.servers:
                node = redis.Redis(port=server.port, socket_timeout=1)
                try:
                    reply = node.execute_command("CLUSTER INFO")
                    if isinstance(reply, dict):
                        states.append(str(reply.get("cluster_state")) == "ok")
                    else:
                        states.append(b"cluster_state:ok" in reply)
                except redis.RedisError:
                    states.append(False)
                finally:
                    node.close()
            if all(states):
                return
            time.sleep(0.1)
        raise RuntimeError("the private Redis Cluster did not reach cluster_state:ok")


@contextlib.contextmanager
def running_cluster() -> Iterator[PrivateCluster]:
    """Start a 3-master Redis Cluster of this test's own (``redis-server`` on free ports), stop
    it on leaving; for fixtures of any scope.

    Yields a [PrivateCluster][]: ``nodes`` are the startup nodes; each of ``servers`` can be
    stopped and restarted (its cluster config survives in its directory).
    """
    cli = shutil.which("redis-cli")
    if cli is None or shutil.which("redis-server") is None:
        _unavailable("redis-server/redis-cli binaries", FileNotFoundError("redis-cli"))
    with tempfile.TemporaryDirectory() as root:
        servers = []
        for index in range(3):
            directory = Path(root) / str(index)
            directory.mkdir()
            servers.append(
                PrivateRedis(
                    port=_free_cluster_port(),
                    directory=str(directory),
                    extra_args=(
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ),
                )
            )
        cluster = PrivateCluster(servers)
        try:
            for server in servers:
                server.start()
            subprocess.run(
                [
                    cli or "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{server.port}" for server in servers),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            cluster.wait_ok()
            yield cluster
        finally:
            for server in servers:
                server.stop()


@pytest.fixture
def redis_cluster() -> Iterator[PrivateCluster]:
    """A running 3-master Redis Cluster of this test's own: see `running_cluster()`."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def module_redis_cluster() -> Iterator[PrivateCluster]:
    """As `redis_cluster`, one for all the tests of a module."""
    with running_cluster() as cluster:
        yield cluster


@dataclass
class PrivateSentinel:
    """A master, a replica and a sentinel of this test's own, on free loopback ports.

    ``service`` is the name the sentinel monitors the master by; ``sentinels`` are the
    addresses to give redis-py's ``Sentinel``. `failover()` kills the master and waits until
    the sentinel has promoted the replica.
    """

    master: PrivateRedis
    replica: PrivateRedis
    sentinel: subprocess.Popen[bytes] | None
    sentinel_port: int
    service: str = "rkmaster"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", self.sentinel_port)]

    def master_address(self) -> tuple[str, int] | None:
        import redis

        client = redis.Redis(port=self.sentinel_port, socket_timeout=1)
        try:
            reply = client.execute_command("SENTINEL", "get-master-addr-by-name", self.service)
        except redis.RedisError:
            return None
        finally:
            client.close()
        if not reply:
            return None
        host, port = reply
        return (host.decode() if isinstance(host, bytes) else host, int(port))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the replica is in sync and the sentinel knows both servers."""
        import redis

        deadline = time.monotonic() + timeout
        sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=1)
        master = redis.Redis(port=self.master.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                try:
                    synced = master.info("replication").get("connected_slaves", 0) >= 1
                    known = sentinel.execute_command("SENTINEL", "replicas", self.service)
                    where = self.master_address()
                    if synced and known and where == ("127.0.0.1", self.master.port):
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.1)
        finally:
            sentinel.close()
            master.close()
        raise RuntimeError("the private sentinel did not see its master and replica in time")

    def failover(self, timeout: float = 60.0) -> None:
        """Kill the master; wait until the sentinel names the replica as the new master."""
        self.master.stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.master_address() == ("127.0.0.1", self.replica.port):
                return
            time.sleep(0.1)
        raise RuntimeError("the sentinel did not promote the replica in time")

    def stop(self) -> None:
        if self.sentinel is not None and self.sentinel.poll() is None:
            self.sentinel.kill()
            self.sentinel.wait(timeout=10)
        self.sentinel = None
        self.replica.stop()
        self.master.stop()


@pytest.fixture
def redis_sentinel() -> Iterator[PrivateSentinel]:
    """A Sentinel-managed Redis of this test's own: master, replica and one sentinel (quorum 1,
    a master is down after 1 s), all on free ports; never the machine's shared servers."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server binary", FileNotFoundError("redis-server"))
    with tempfile.TemporaryDirectory() as root:
        master = PrivateRedis(port=_free_port(), directory=str(Path(root) / "master"))
        replica_dir = Path(root) / "replica"
        Path(master.directory).mkdir()
        replica_dir.mkdir()
        master.start()
        replica = PrivateRedis(
            port=_free_port(),
            directory=str(replica_dir),
            extra_args=("--replicaof", "127.0.0.1", str(master.port)),
        )
        setup = PrivateSentinel(master, replica, None, _free_port())
        try:
            replica.start()
            config = Path(root) / "sentinel.conf"
            config.write_text(
                f"port {setup.sentinel_port}\n"
                "bind 127.0.0.1\n"
                f"dir {root}\n"
                f"sentinel monitor {setup.service} 127.0.0.1 {master.port} 1\n"
                f"sentinel down-after-milliseconds {setup.service} 1000\n"
                f"sentinel failover-timeout {setup.service} 10000\n"
                f"sentinel parallel-syncs {setup.service} 1\n"
            )
            setup.sentinel = subprocess.Popen(
                [binary or "redis-server", str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            setup.wait_ready()
            yield setup
        finally:
            setup.stop()
