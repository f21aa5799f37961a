"""Test doubles shared by several test folders: callables that fail in turn, threads
released together, and a breaker listener that notes what it hears.

This folder is on ``sys.path`` (pytest's default import mode puts the directory of the
top-level conftest.py there), so any test can ``from doubles import Flaky``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_together(count: int, call: Callable[[int], T]) -> list[T]:
    """Run ``call(index)`` in ``count`` threads released at once behind a barrier.

    Returns their results in index order once every thread has ended; if any raised, the
    first exception raised is re-raised instead (catch inside ``call`` to collect errors).
    """
    gate = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        gate.wait()
        try:
            results[index] = call(index)
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class Flaky:
    """A callable that raises the given errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: object = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


class AsyncFlaky(Flaky):
    async def run(self, *args: object, **kwargs: object) -> object:
        return self(*args, **kwargs)


class Heard:
    """A breaker listener that notes every event it hears, as words (thread-safe): a state
    change as ``"OLD->NEW: cause"``, the storage's health edges as ``"degraded"`` (the error
    kept in ``errors``) and ``"recovered"``."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def _note(self, event: str) -> None:
        with self._lock:
            self.events.append(event)

    def on_state_change(self, breaker: Any, old: Any, new: Any, cause: str = "") -> None:
        self._note(f"{old}->{new}: {cause}")

    def on_storage_degraded(self, breaker: Any, error: BaseException) -> None:
        with self._lock:
            self.errors.append(error)
        self._note("degraded")

    def on_storage_recovered(self, breaker: Any) -> None:
        self._note("recovered")
