"""One breaker shared by 4 processes x 4 threads through the real Redis.

- failures spread over the fleet open it after exactly ``failure_threshold`` recorded ones;
- every process sees OPEN within 100 ms (p99) of the transition in Redis;
- HALF_OPEN admits exactly ``half_open_max_calls`` trials across the fleet;
- a trial whose process is SIGKILLed frees its slot when its lease expires.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import statistics
import time
import uuid
from typing import Any

import pytest
import shared_fleet as fleet

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage

PROCESSES = 4
ROUNDS = 8


def _key(spec: dict[str, Any]) -> str:
    return "{" + f"{spec['prefix']}:breaker:{spec['name']}" + "}:state"


def _get(queue_: Any, timeout: float = 60) -> Any:
    try:
        return queue_.get(timeout=timeout)
    except queue.Empty:
        pytest.fail("a worker process stopped reporting")


def run_fleet(spec: dict[str, Any], client: Any) -> None:
    """The whole scenario against ``client`` (any redis-py sync client on that Redis)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES + 1)
    reports = context.Queue()
    release = context.Event()
    workers = [
        fleet.start(fleet.fleet_worker, spec, ROUNDS, barrier, reports, release)
        for _ in range(PROCESSES)
    ]
    control = fleet.make_breaker(spec)
    try:
        latencies: list[float] = []
        for round_ in range(ROUNDS):
            control.reset()
            barrier.wait(timeout=120)  # reset is in Redis
            barrier.wait(timeout=60)  # every worker's view is CLOSED: go
            rounds = [_get(reports) for _ in range(PROCESSES)]
            stored = client.hgetall(_key(spec)).items()
            state = {key.decode(): value.decode() for key, value in stored}
            assert state["s"] == "OPEN"
            assert int(state["f"]) == fleet.THRESHOLD
            recorded = sum(report[2] for report in rounds)
            assert recorded == fleet.THRESHOLD, (round_, rounds)
            assert all(report[4] == 0 and report[5] == [] for report in rounds), rounds
            opened = int(state["oa"]) / 1_000_000
            latencies += [report[3] - opened for report in rounds]
        assert all(latency >= -0.002 for latency in latencies), latencies
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(
            f"OPEN seen by every process: median {statistics.median(ordered) * 1000:.2f} ms, "
            f"p99 {p99 * 1000:.2f} ms, max {ordered[-1] * 1000:.2f} ms over {len(ordered)}"
        )
        assert p99 < 0.100

        opened = int(client.hget(_key(spec), "oa")) / 1_000_000
        time.sleep(max(0.0, opened + fleet.RECOVERY + 0.05 - time.time()))
        barrier.wait(timeout=60)
        answers: list[str] = []
        finals = []
        while len(answers) < PROCESSES * fleet.THREADS:
            report = _get(reports)
            (finals if report[0] == "done" else answers).append(report[0])
        # Every thread has tried once; the admitted ones are still running their trial.
        assert answers.count("admitted") == fleet.HALF_OPEN_MAX
        assert answers.count("rejected") == PROCESSES * fleet.THREADS - fleet.HALF_OPEN_MAX
        release.set()
        while len(finals) < PROCESSES:
            report = _get(reports)
            assert report[0] == "done"
            finals.append(report[0])
        assert client.hget(_key(spec), "s") == b"CLOSED"  # 3 successful trials closed it
    finally:
        release.set()
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
        control.unregister()
    assert all(worker.exitcode == 0 for worker in workers)


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
