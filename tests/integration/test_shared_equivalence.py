"""The Redis-backed breaker decides exactly as the in-process one, call by call, on the real
Redis (its own Lua interpreter, not fakeredis's): the hypothesis model of
tests/shared_equivalence.py, fewer examples than the unit test runs on fakeredis."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from shared_equivalence import configs, run_program, steps

_examples = itertools.count()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=configs, program=steps)
def test_redis_and_memory_breakers_decide_alike_on_the_real_redis(
    redis_client: Any, config: dict[str, Any], program: list[Any]
) -> None:
    prefix = f"eq-real-{next(_examples)}"
    try:
        run_program(redis_client, prefix, config, program)
    finally:
        stale = redis_client.keys("{" + prefix + ":*")
        if stale:
            redis_client.delete(*stale)
