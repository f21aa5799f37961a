"""Foreign data in a breaker's keys on the real Redis (whose Lua 5.1 reads ``inf``, ``nan``,
``0x10`` and ``1e3`` as numbers): a fresh CLOSED state and a logged error, never a crash and
never a storage that believes Redis is down."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from polling import until
from resilience_kit import CircuitBreaker, CircuitState, RedisStorage

STATE = {"v": "3", "id": "abc", "s": "CLOSED", "ou": "0", "oa": "", "to": "60000000", "f": "0"}
STATE = {**STATE, "ts": "0", "ep": "2", "cfg": "x"}


def _boom() -> None:
    raise ValueError("down")


@pytest.mark.parametrize(
    "fields",
    [
        {"s": "OPEN", "ou": "inf", "oa": "1"},
        {"to": "nan"},
        {"v": "1.5"},
        {"f": "0x10"},
        {"ep": "1e3"},
        {"id": "a\nb"},
    ],
    ids=["inf", "nan", "float", "hex", "exponent", "newline"],
)
def test_foreign_numbers_in_the_state_become_a_fresh_closed_state(
    redis_url: str, redis_client: Any, caplog: pytest.LogCaptureFixture, fields: dict[str, str]
) -> None:
    prefix = f"corrupt-{uuid.uuid4().hex[:8]}"
    key = "{" + prefix + ":breaker:dep}:state"
    redis_client.hset(key, mapping={**STATE, **fields})
    storage = RedisStorage(redis_url, prefix=prefix)
    breaker = CircuitBreaker("dep", failure_threshold=2, storage=storage)
    try:
        with caplog.at_level(logging.ERROR, logger="resilience_kit.redis"):
            assert breaker.call(lambda: "ok") == "ok"
            assert until(lambda: "was not a breaker state" in caplog.text)
        for _ in range(2):
            with pytest.raises(ValueError, match="down"):
                breaker.call(_boom)
        assert breaker.state is CircuitState.OPEN
        assert redis_client.hget(key, "s") == b"OPEN"
        assert breaker.stats().store_errors == 0
        assert not storage.guard.down
    finally:
        breaker.unregister()
        storage.close()


def test_foreign_window_fields_are_dropped(redis_url: str, redis_client: Any) -> None:
    prefix = f"corrupt-{uuid.uuid4().hex[:8]}"
    key = "{" + prefix + ":breaker:dep}:window"
    seconds, micros = redis_client.time()
    head = (seconds * 1_000_000 + micros) // 3_000_000  # the current bucket of a 60 s window
    garbage = {f"c{head}": "nan", f"f{head}": "inf", f"c{head - 1}": "1.5", f"x{head}": "7"}
    redis_client.hset(key, mapping=garbage)
    storage = RedisStorage(redis_url, prefix=prefix)
    breaker = CircuitBreaker("dep", failure_rate=0.5, minimum_calls=2, window=60, storage=storage)
    try:
        assert breaker.call(lambda: "ok") == "ok"
        with pytest.raises(ValueError, match="down"):
            breaker.call(_boom)
        assert breaker.state is CircuitState.OPEN  # 1 failure in 2 calls, nothing foreign
        assert breaker.stats().store_errors == 0
        assert not storage.guard.down
    finally:
        breaker.unregister()
        storage.close()
