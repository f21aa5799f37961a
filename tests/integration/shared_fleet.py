"""Worker processes for the fleet tests: one breaker shared through Redis by several processes.

Each worker is a separate interpreter (``spawn``), as the processes of a real service are; its
threads drive the breaker and report to the parent through queues. Helpers, not tests.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from typing import Any

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage

THREADS = 4
THRESHOLD = 20
RECOVERY = 2.0
HALF_OPEN_MAX = 3
LEASE = 1.5


def client_for(spec: dict[str, Any]) -> Any:
    """The client (or URL) a worker's storage uses."""
    if spec.get("cluster_port"):
        from redis.cluster import RedisCluster

        return RedisCluster(
            host="127.0.0.1",
            port=spec["cluster_port"],
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
    return spec["url"]


def make_breaker(spec: dict[str, Any]) -> CircuitBreaker:
    storage = RedisStorage(client_for(spec), prefix=spec["prefix"], trial_lease=LEASE)
    return CircuitBreaker(
        spec["name"],
        failure_threshold=THRESHOLD,
        recovery_timeout=RECOVERY,
        half_open_max_calls=spec.get("half_open_max", HALF_OPEN_MAX),
        success_threshold=spec.get("half_open_max", HALF_OPEN_MAX),
        storage=storage,
    )


def _failing() -> None:
    time.sleep(0.0005)
    raise ValueError("dependency down")


def fleet_worker(
    spec: dict[str, Any],
    rounds: int,
    barrier: Any,
    reports: Any,
    release: Any,
) -> None:
    """Open the shared breaker ``rounds`` times with failures from all threads, watching
    when this process sees OPEN; then make one HALF_OPEN attempt per thread."""
    breaker = make_breaker(spec)
    breaker.call(lambda: None)  # reads the shared state
    unexpected: list[str] = []
    for round_ in range(rounds):
        barrier.wait()  # the parent has reset the circuit
        while breaker.state is not CircuitState.CLOSED:
            time.sleep(0.0005)
        before = breaker._cell.recorded_failures
        seen: list[float] = []
        stop = threading.Event()

        def watch(seen: list[float] = seen, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                if breaker._machine.state is CircuitState.OPEN:
                    seen.append(time.time())
                    return
                time.sleep(0.0002)

        def hammer() -> None:
            while True:
                try:
                    breaker.call(_failing)
                except ValueError:
                    continue
                except CircuitOpenError:
                    return
                except BaseException as error:  # a store error reaching a caller: a bug
                    unexpected.append(repr(error))
                    return

        watcher = threading.Thread(target=watch)
        watcher.start()
        barrier.wait()  # every process is CLOSED and ready: fail together
        threads = [threading.Thread(target=hammer) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        watcher.join(5)
        stop.set()
        reports.put(
            (
                "round",
                round_,
                breaker._cell.recorded_failures - before,
                seen[0] if seen else None,
                breaker.stats().store_errors,
                list(unexpected),
            )
        )
    barrier.wait()  # the parent has waited out the recovery timeout: HALF_OPEN trials

    def trial() -> None:
        def held() -> str:
            reports.put(("admitted",))
            release.wait(20)
            return "ok"

        try:
            breaker.call(held)
        except CircuitOpenError:
            reports.put(("rejected",))

    threads = [threading.Thread(target=trial) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports.put(("done", str(breaker.state)))


def trial_holder(spec: dict[str, Any], reports: Any) -> None:
    """Take the one HALF_OPEN trial slot and hang in it until killed."""
    breaker = make_breaker(spec)
    while True:
        with contextlib.suppress(CircuitOpenError):
            breaker.call(lambda: (reports.put(("holding", time.time())), time.sleep(600)))
        time.sleep(0.01)


def start(target: Any, *args: Any) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    return process
