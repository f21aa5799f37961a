"""Test doubles shared by several test folders: callables that fail in turn.

This folder is on ``sys.path`` (pytest's default import mode puts the directory of the
top-level conftest.py there), so any test can ``from doubles import Flaky``.
"""

from __future__ import annotations


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
