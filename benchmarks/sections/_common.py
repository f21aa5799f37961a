"""Work functions and helpers shared by the sections."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from benchmarks._harness import Context, Unavailable

RESULT = ("result",)
"""What the plain work returns; cases check they hand it back unchanged (identity)."""

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_DB = 14
KEY_PREFIX = "rk-bench"


def work() -> tuple[str]:
    """The plain call every sync case wraps."""
    return RESULT


async def awork() -> tuple[str]:
    """The plain await every async case wraps."""
    return RESULT


def fail() -> None:
    """The plain raise every sync raising case wraps."""
    raise ValueError("boom")


async def afail() -> None:
    """The plain raising await every async raising case wraps."""
    raise ValueError("boom")


async def ayielding() -> tuple[str]:
    """An await that suspends once, so concurrent tasks are really in flight together."""
    await asyncio.sleep(0)
    return RESULT


def failing() -> tuple[Callable[[], None], list[int]]:
    """A raising function and its call counter (to check how many attempts a retry made)."""
    calls = [0]

    def fail_counted() -> None:
        calls[0] += 1
        raise ValueError("boom")

    return fail_counted, calls


def ours(module: str, name: str) -> Any:
    """A resilience_kit name, or ``Unavailable`` when that part is not built yet."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise Unavailable(f"not yet implemented ({module}.{name})") from None


def expect(condition: bool, message: str) -> None:
    """A verification step (``assert`` would vanish under ``python -O``)."""
    if not condition:
        raise AssertionError(message)


def redis_sync(ctx: Context) -> Any:
    """A shared sync client on the local Redis (db 14), or ``Unavailable`` when unreachable."""

    def make() -> Any:
        try:
            import redis
        except ImportError as exc:
            raise Unavailable(f"redis client not installed: {exc}") from None
        client = redis.Redis(
            host=REDIS_HOST,
            port=REDIS_PORT,
            db=REDIS_DB,
            socket_timeout=2,
            socket_connect_timeout=1,
        )
        try:
            client.ping()
        except Exception as exc:
            client.close()
            raise Unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT} unreachable: {exc}") from None
        return client

    return ctx.resource("redis-sync", make, lambda client: client.close())


def delete_keys(client: Any, pattern: str) -> None:
    """Delete this run's keys (never a flush: the server is shared)."""
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)
