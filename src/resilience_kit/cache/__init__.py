"""Cache a function's results: `@cached` for def and async def, in memory or in Redis.

Keys are built from a canonical, type-tagged encoding of the bound arguments (never their
``str()``), values are stored with a faithful serializer behind a small header, every backend
failure is a miss, and a miss is computed once per key however many callers arrive. The cache
guide (`docs/cache.md`) covers the key scheme, invalidation, serializers and outage behaviour.
"""

from __future__ import annotations

from resilience_kit.cache._backend import CacheBackend
from resilience_kit.cache._decorator import (
    AsyncCachedFunction,
    BoundCachedMethod,
    CachedFunction,
    cached,
    configure,
    invalidate_cache,
    invalidate_pattern,
    invalidate_prefix,
)
from resilience_kit.cache._keys import key_part
from resilience_kit.cache._memory import MemoryBackend
from resilience_kit.cache._redis import RedisBackend
from resilience_kit.cache._stats import CacheStats, PrefixStats, cache_stats, reset_cache_stats
from resilience_kit.cache._tiered import TieredBackend
from resilience_kit.cache.serializers import (
    JsonSerializer,
    MsgpackSerializer,
    PickleSerializer,
    Serializer,
)

__all__ = [
    "cached",
    "invalidate_cache",
    "invalidate_prefix",
    "invalidate_pattern",
    "configure",
    "cache_stats",
    "reset_cache_stats",
    "key_part",
    "CacheStats",
    "PrefixStats",
    "CachedFunction",
    "AsyncCachedFunction",
    "BoundCachedMethod",
    "CacheBackend",
    "MemoryBackend",
    "RedisBackend",
    "TieredBackend",
    "Serializer",
    "JsonSerializer",
    "MsgpackSerializer",
    "PickleSerializer",
]
