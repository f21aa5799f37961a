"""A shared breaker on a redis-server of the test's own, killed mid-run and restarted.

Callers never see a store exception; while Redis is down the breaker protects on its local
state; once Redis is back it resynchronises, and the shared state (empty after the restart)
wins over what the process decided alone.
"""

from __future__ import annotations

import threading
import time
import uuid

from polling import until as _until
from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState, RedisStorage


class Traffic:
    """Threads calling through ``breaker`` until stopped; anything unexpected is kept."""

    def __init__(self, breaker: CircuitBreaker, threads: int = 4) -> None:
        self.failing = False
        self.unexpected: list[BaseException] = []
        self.slowest = 0.0
        self._stop = threading.Event()

        @breaker
        def call() -> None:
            if self.failing:
                raise ValueError("dependency down")

        def run() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    call()
                except (ValueError, CircuitOpenError):
                    pass
                except BaseException as error:
                    self.unexpected.append(error)
                self.slowest = max(self.slowest, time.monotonic() - started)
                time.sleep(0.001)

        self._threads = [threading.Thread(target=run) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def test_redis_killed_and_restarted_mid_run(private_redis) -> None:
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    storage = RedisStorage(private_redis.url, prefix=prefix)
    breaker = CircuitBreaker("dep", failure_threshold=5, recovery_timeout=60, storage=storage)
    breaker.unregister()  # it goes on working; the name is free for "another process" below
    traffic = Traffic(breaker)
    try:
        time.sleep(0.3)
        assert not storage.guard.down

        private_redis.stop()
        time.sleep(0.3)
        traffic.failing = True  # failures while Redis is down: the local state must open
        assert _until(lambda: breaker.state is CircuitState.OPEN, 5)
        assert storage.guard.down
        assert breaker.stats().store_errors >= 1
        traffic.failing = False
        time.sleep(0.5)  # rejected locally, at no cost to Redis (it is not there)

        private_redis.start()
        # Back: the subscriber reconnects, and the shared state (empty: a fresh CLOSED
        # circuit after the restart) replaces what this process decided alone.
        assert _until(lambda: not storage.guard.down, 5)
        assert _until(lambda: breaker.state is CircuitState.CLOSED, 5)
        traffic.failing = True
        assert _until(lambda: breaker.state is CircuitState.OPEN, 5)

        # ... and the shared state is in Redis again, for every process to read.
        other = RedisStorage(private_redis.url, prefix=prefix)
        elsewhere = CircuitBreaker("dep", failure_threshold=5, recovery_timeout=60, storage=other)
        try:
            assert elsewhere.state is CircuitState.CLOSED  # nothing read yet
            try:
                elsewhere.call(lambda: None)
                raise AssertionError("admitted while the shared circuit is open")
            except CircuitOpenError:
                pass
        finally:
            elsewhere.unregister()
            other.close()
    finally:
        traffic.stop()
        storage.close()
    assert traffic.unexpected == []
    assert traffic.slowest < 1.0  # a dead Redis costs a caller at most a short timeout


def test_a_hung_redis_costs_callers_one_short_timeout_at_most(private_redis) -> None:
    """SIGSTOP leaves connections open but silent: the worst case for timeouts."""
    import os
    import signal

    storage = RedisStorage(private_redis.url, prefix=f"hang-{uuid.uuid4().hex[:8]}")
    breaker = CircuitBreaker("dep", failure_threshold=1000, storage=storage)
    traffic = Traffic(breaker)
    assert private_redis.process is not None
    pid = private_redis.process.pid
    try:
        time.sleep(0.2)
        os.kill(pid, signal.SIGSTOP)
        traffic.failing = True  # every failure must be sent: the guard has to step in
        time.sleep(1.5)
        assert storage.guard.down
        os.kill(pid, signal.SIGCONT)
        assert _until(lambda: not storage.guard.down, 5)
    finally:
        os.kill(pid, signal.SIGCONT)
        traffic.stop()
        storage.close()
        breaker.unregister()
    assert traffic.unexpected == []
    assert traffic.slowest < 1.0
