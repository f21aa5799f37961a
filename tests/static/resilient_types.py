"""Checked by mypy in tests/static/test_types.py: @resilient keeps signatures for type checkers.

Never imported at runtime; the ``type: ignore`` comments mark calls mypy must reject (with
``warn_unused_ignores`` an accepted call would fail the check).
"""

from __future__ import annotations

import asyncio

from typing_extensions import assert_type

import resilience_kit
from resilience_kit import CircuitBreaker, RetryEvent, RetryPolicy, resilient, retry

breaker = CircuitBreaker("typing-example")


@resilient(breaker=breaker, retry="redis", fallback=lambda key, *, error: None)
def get(key: str, *, fresh: bool = False) -> bytes | None:
    return None


@resilient(breaker=breaker, retry="external_api", timeout=5.0)
async def fetch(url: str, attempts: int = 1) -> dict[str, int]:
    return {}


async def use() -> None:
    assert_type(get("k"), bytes | None)
    assert_type(get("k", fresh=True), bytes | None)
    assert_type(await fetch("https://example.org"), dict[str, int])
    get(1)  # type: ignore[arg-type]
    get("k", stale=True)  # type: ignore[call-arg]
    await fetch("u", attempts="2")  # type: ignore[arg-type]


@resilience_kit.timeout(2.5)
async def quote(symbol: str, *, fresh: bool = False) -> float:
    return 1.0


def on_retry(event: RetryEvent) -> None:
    assert_type(event.attempt, int)
    assert_type(event.error, BaseException | None)


@retry(RetryPolicy(retry_if_result=lambda r: r is None, on_retry=on_retry))
def lookup(key: str) -> int | None:
    return None


async def use_timeout() -> None:
    assert_type(await quote("ACME"), float)
    task = asyncio.create_task(quote("ACME", fresh=True))  # a coroutine, not just an awaitable
    assert_type(await task, float)
    assert_type(lookup("k"), int | None)
    await quote(1)  # type: ignore[arg-type]
    await quote("ACME", stale=True)  # type: ignore[call-arg]
