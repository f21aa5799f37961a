"""The shared test helpers do what the tests that use them rely on."""

from __future__ import annotations

import threading

import pytest

from doubles import run_together


def test_run_together_releases_every_thread_at_once_and_keeps_index_order() -> None:
    arrived = threading.Barrier(8)  # passes only if all 8 calls are running at the same time

    def call(index: int) -> int:
        arrived.wait(timeout=30)
        return index * 10

    assert run_together(8, call) == [0, 10, 20, 30, 40, 50, 60, 70]


def test_run_together_re_raises_a_threads_exception_after_every_thread_ended() -> None:
    finished: list[int] = []

    def call(index: int) -> int:
        if index == 3:
            raise LookupError("thread 3")
        finished.append(index)
        return index

    with pytest.raises(LookupError, match="thread 3"):
        run_together(6, call)
    assert sorted(finished) == [0, 1, 2, 4, 5]
