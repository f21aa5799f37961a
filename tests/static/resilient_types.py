"""Checked by mypy in tests/static/test_types.py: @resilient keeps signatures for type checkers.

Never imported at runtime; the ``type: ignore`` comments mark calls mypy must reject (with
``warn_unused_ignores`` an accepted call would fail the check).
"""

from __future__ import annotations

from typing_extensions import assert_type

from resilience_kit import CircuitBreaker, resilient

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
