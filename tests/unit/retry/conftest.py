"""Fixtures for retry tests: a fake clock that records every sleep, and clean statistics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from retry_support import Sleeps

from resilience_kit.retry import reset_retry_stats


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(autouse=True)
def _fresh_stats() -> Iterator[None]:
    reset_retry_stats()
    yield
    reset_retry_stats()
