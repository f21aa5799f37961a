"""Breaker state shared through Redis: [RedisStorage][resilience_kit.RedisStorage].

Needs the ``redis`` extra (``pip install "resilience-kit-py[redis]"``) only when a storage is made
from a URL or talks to Redis; importing this module needs nothing beyond the core.
"""

from __future__ import annotations

from resilience_kit.breaker._redis.storage import RedisStorage

__all__ = ["RedisStorage"]
