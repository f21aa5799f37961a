"""Shared state in Redis: the storage object and the parts every shared primitive reuses.

- `keys`: key and channel names, one hash tag per object (Redis Cluster).
- `scripts`: Lua scripts run by SHA, reloaded on ``NOSCRIPT``.
- `guard`: the health guard that keeps a dead Redis from costing each call a timeout.
- `clients`: clients built from URLs (short timeouts, no retries).
- `storage`: [`RedisStorage`][resilience_kit.RedisStorage] and its subscriber thread.
- `cell`, `machine`: a breaker's local view of its shared state.
"""

from __future__ import annotations

from resilience_kit.breaker._redis.storage import RedisStorage

__all__ = ["RedisStorage"]
