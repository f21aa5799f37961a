"""Sleeping between attempts, and the process-wide switch that skips it (``no_waits``)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from resilience_kit.clock import Clock


class _NoWaits:
    """How many ``testing.no_waits()`` blocks are open, in any thread; sleeps skip while > 0."""

    __slots__ = ("depth", "lock")

    def __init__(self) -> None:
        self.depth = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.depth += 1

    def exit(self) -> None:
        with self.lock:
            self.depth -= 1


_NO_WAITS = _NoWaits()


def _pause_sync(sleep: Callable[[float], object]) -> Callable[[float], None]:
    def pause(seconds: float) -> None:
        if not _NO_WAITS.depth:
            sleep(seconds)

    return pause


def _pause_async(sleep: Callable[[float], object]) -> Callable[[float], Awaitable[None]]:
    async def pause(seconds: float) -> None:
        if not _NO_WAITS.depth:
            slept = sleep(seconds)
            if inspect.isawaitable(slept):
                await slept

    return pause


def _sleepers(
    clock: Clock, sleep: Callable[[float], Any] | None
) -> tuple[Callable[[float], Any], Callable[[float], Any]]:
    """The sync and async sleep functions: given, the clock's own (a FakeClock), or real."""
    if sleep is not None:
        return sleep, sleep
    return (
        getattr(clock, "sleep", None) or time.sleep,
        getattr(clock, "async_sleep", None) or asyncio.sleep,
    )
