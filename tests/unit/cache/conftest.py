"""Every cache test starts with a fresh default backend and zeroed counters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resilience_kit.cache import MemoryBackend, configure, reset_cache_stats


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[MemoryBackend]:
    backend = MemoryBackend()
    previous = configure(backend=backend)
    reset_cache_stats()
    yield backend
    configure(backend=previous)
