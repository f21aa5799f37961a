"""Helpers for the shared-state unit tests."""

from __future__ import annotations

import contextlib
import threading

import resilience_kit
from polling import until
from resilience_kit import CircuitBreaker


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    """Record ``times`` failures through ``breaker`` (rejections count nothing)."""

    def boom() -> None:
        raise ValueError("down")

    for _ in range(times):
        with contextlib.suppress(ValueError, resilience_kit.CircuitOpenError):
            breaker.call(boom)


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.call(lambda: None)


def converged(breakers: list[CircuitBreaker], state: object) -> bool:
    """Wait until every breaker's local view is in ``state``: announcements take a moment
    (milliseconds, longer on a loaded machine), and a process acts on its view meanwhile."""
    return until(lambda: all(breaker._machine.state is state for breaker in breakers))


class CountingScript:
    """Stands in for a storage's script and records the operations sent through it (each
    call's ``args[0]``), singly or pipelined; ``only`` limits it to one thread's."""

    def __init__(self, script, record: list[str], *, only: int | None = None) -> None:
        self.script = script
        self.record = record
        self.only = only
        self.sha, self.source = script.sha, script.source

    def _note(self, args) -> None:
        if self.only is None or threading.get_ident() == self.only:
            self.record.append(args[0])

    def __call__(self, client, keys, args):
        self._note(args)
        return self.script(client, keys, args)

    async def call_async(self, client, keys, args):
        self._note(args)
        return await self.script.call_async(client, keys, args)

    def run_many(self, client, calls):
        for _keys, args in calls:
            self._note(args)
        return self.script.run_many(client, calls)
