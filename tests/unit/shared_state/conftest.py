"""Fixtures for shared-state unit tests: fakeredis servers and breakers in simulated processes.

A "process" here is a breaker on its own :class:`RedisStorage` and its own client; it is taken
out of the name registry at once, so several can share one name in one test, as breakers in
different processes do. The real multi-process proofs are in tests/integration.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest

import resilience_kit
from resilience_kit import CircuitBreaker, RedisStorage

_prefixes = itertools.count()


@pytest.fixture(autouse=True)
def _release_breaker_names() -> Iterator[None]:
    before = {name: id(breaker) for name, breaker in resilience_kit.breakers().items()}
    yield
    for name, breaker in resilience_kit.breakers().items():
        if before.get(name) != id(breaker):
            breaker.unregister()


@pytest.fixture
def server() -> fakeredis.FakeServer:
    """One fake Redis server that the test's storages share."""
    return fakeredis.FakeServer()


@pytest.fixture
def prefix() -> str:
    return f"t{next(_prefixes)}"


@pytest.fixture
def storage_factory(
    server: fakeredis.FakeServer, prefix: str
) -> Iterator[Callable[..., RedisStorage]]:
    """Make storages on ``server``, each with its own client, as separate processes have."""
    made: list[RedisStorage] = []

    def make(**options: Any) -> RedisStorage:
        options.setdefault("prefix", prefix)
        storage = RedisStorage(fakeredis.FakeRedis(server=server), **options)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


@pytest.fixture
def process(
    storage_factory: Callable[..., RedisStorage],
) -> Callable[..., CircuitBreaker]:
    """A breaker in a simulated process of its own (own storage and client)."""

    def make(name: str = "dep", *, storage: RedisStorage | None = None, **config: Any):
        breaker = CircuitBreaker(
            name, storage=storage if storage is not None else storage_factory(), **config
        )
        breaker.unregister()
        return breaker

    return make
