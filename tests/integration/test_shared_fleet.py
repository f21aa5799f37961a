"""One breaker shared by 4 processes x 4 threads through the real Redis.

- failures spread over the fleet open it after exactly ``failure_threshold`` recorded ones;
- every process sees OPEN within 100 ms (p99) of the transition in Redis;
- HALF_OPEN admits exactly ``half_open_max_calls`` trials across the fleet;
- a trial whose process is SIGKILLed frees its slot when its lease expires.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from typing import Any

import shared_fleet as fleet

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage

run_fleet = fleet.run_fleet
_get = fleet.get_report


def test_four_processes_share_one_circuit(redis_url: str, redis_client: Any) -> None:
    spec = {"url": redis_url, "prefix": f"fleet-{uuid.uuid4().hex[:8]}", "name": "payments"}
    run_fleet(spec, redis_client)


def test_a_sigkilled_trial_frees_its_slot_when_its_lease_expires(
    redis_url: str, redis_client: Any
) -> None:
    import multiprocessing

    spec = {
        "url": redis_url,
        "prefix": f"kill-{uuid.uuid4().hex[:8]}",
        "name": "payments",
        "half_open_max": 1,
    }
    reports = multiprocessing.get_context("spawn").Queue()
    here = fleet.make_breaker(spec)
    for _ in range(fleet.THRESHOLD):
        with contextlib.suppress(ValueError):
            here.call(fleet._failing)
    assert here.state is CircuitState.OPEN
    holder = fleet.start(fleet.trial_holder, spec, reports)
    try:
        _, took_at = _get(reports)  # the holder is inside its trial
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        rejected = 0
        while True:
            try:
                here.call(lambda: None)
                break
            except CircuitOpenError:
                rejected += 1
                time.sleep(0.01)
            assert time.time() < took_at + fleet.LEASE + 5, "the slot was never freed"
        admitted_at = time.time()
        assert rejected > 0  # the dead trial held the only slot for a while
        assert admitted_at >= took_at + fleet.LEASE - 0.05
        assert admitted_at <= took_at + fleet.LEASE + 1.0
        assert here.state is CircuitState.CLOSED
    finally:
        if holder.is_alive():
            holder.kill()
        here.unregister()


def test_redis_storage_is_exported() -> None:
    import resilience_kit

    assert resilience_kit.RedisStorage is RedisStorage
    assert CircuitBreaker is resilience_kit.CircuitBreaker
