"""Work functions and helpers shared by the sections."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
from collections.abc import Callable
from typing import Any

from benchmarks._harness import Context, NotYetImplemented, Unavailable

RESULT = ("result",)
"""What the plain work returns; cases check they hand it back unchanged (identity)."""

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_DB = int(os.environ.get("RK_BENCH_REDIS_DB", "14"))
"""db 14 unless ``RK_BENCH_REDIS_DB`` names another (helpers working side by side)."""
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
    """A resilience_kit name; ``NotYetImplemented`` only while ``module`` does not exist at all.

    Only a module that is absent counts as not built: one that exists but fails to import, or
    lacks ``name``, raises, and the case fails (a refactor that breaks a name must not pass for
    "not yet implemented"). The section decides whether an absent module is acceptable: it must
    list it in ``Section.future``.
    """
    if not _module_exists(module):
        if hasattr(importlib.import_module("resilience_kit"), name):
            raise RuntimeError(
                f"resilience_kit.{name} exists but {module} does not: point the benchmark at "
                "the module that defines it"
            )
        raise NotYetImplemented(module, name)
    return getattr(importlib.import_module(module), name)


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError as exc:
        # find_spec imports the parent packages: a missing parent inside resilience_kit means
        # the module is absent too; resilience_kit itself missing is a broken install.
        parent = exc.name or ""
        if parent.startswith("resilience_kit.") and module.startswith(parent + "."):
            return False
        raise


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
