"""Names several of @resilient's test modules share.

This folder is on ``sys.path`` (pytest's default import mode puts a test module's folder there),
so a test module can ``from composition_support import FIVE, MakeBreaker``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from resilience_kit import CircuitBreaker, RetryPolicy

FIVE: Final = RetryPolicy(name="composed", attempts=5, min_wait=0.0, max_wait=0.0)
"""Five attempts and no waits: a test counts the retries without sleeping."""

MakeBreaker = Callable[..., CircuitBreaker]
"""The type of the ``make_breaker`` fixture (conftest.py)."""
