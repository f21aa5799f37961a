"""Test doubles shared by several test folders: callables that fail in turn, and threads
released together.

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
