"""The Redis-backed breaker decides exactly as the in-process one, call by call (hypothesis,
on fakeredis; tests/integration/test_shared_equivalence.py runs the model on the real Redis).
The model is in tests/shared_equivalence.py."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings

from shared_equivalence import configs, run_program, steps


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, program=steps)
def test_redis_and_memory_breakers_decide_alike(config: dict[str, Any], program: list[Any]):
    run_program(fakeredis.FakeRedis(), "eq", config, program)
