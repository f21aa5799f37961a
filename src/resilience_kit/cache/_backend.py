"""What a cache backend provides, and where decorated functions find theirs."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

from resilience_kit.cache._memory import MemoryBackend

__all__ = ["CacheBackend", "routing"]


@runtime_checkable
class CacheBackend(Protocol):
    """Where entries live: [MemoryBackend][resilience_kit.cache.MemoryBackend],
    [RedisBackend][resilience_kit.cache.RedisBackend], or your own.

    Keys arrive built (``{prefix}:...:digest``); ``scope`` is the prefix, whose generation
    [invalidate_prefix][resilience_kit.cache.invalidate_prefix] bumps. A backend raises on
    failure: the cache counts the error and treats it as a miss.

    Attributes:
        shared: Whether entries are seen by other processes (times are then wall-clock).
        native_async: Whether it has awaitable twins (``aget``, ``aset``...) for async code.
        stores_bytes: Whether it stores framed bytes (else live entries).
        compress_over: Payload size above which bytes are compressed (None: never).
    """

    shared: bool
    native_async: bool
    stores_bytes: bool
    compress_over: int | None

    def get(self, scope: str, key: str) -> tuple[Any, int]:
        """The stored entry under ``key`` (None if absent) and ``scope``'s generation."""
        ...

    def set(self, scope: str, key: str, stored: Any, ttl: float) -> None:
        """Store ``stored`` under ``key`` for ``ttl`` seconds."""
        ...

    def delete(self, scope: str, key: str) -> None:
        """Drop ``key``."""
        ...

    def bump(self, scope: str) -> None:
        """Start ``scope``'s next generation: every older entry of it stops counting."""
        ...

    def delete_matching(self, scope: str, pattern: str) -> int:
        """Drop ``scope``'s keys matching the Redis glob ``pattern``; return how many."""
        ...

    def info(self) -> dict[str, Any]:
        """The backend's own figures."""
        ...

    def ainfo(self) -> Awaitable[dict[str, Any]]:
        """[info][resilience_kit.cache.CacheBackend.info], awaitable."""
        ...


class _Routing:
    """The process's default backend, and the one that overrides every function's (tests)."""

    __slots__ = ("default", "override")

    def __init__(self) -> None:
        self.default: CacheBackend = MemoryBackend()
        self.override: CacheBackend | None = None


routing = _Routing()
