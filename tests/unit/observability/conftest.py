"""Fixtures the observability tests share: a registry of the test's own, and promtool."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A registry of the test's own with resilience_kit's collector on it, removed afterwards."""
    from prometheus_client import CollectorRegistry

    from resilience_kit import prometheus as rk_prometheus

    registry = CollectorRegistry()
    collector = rk_prometheus.register(registry=registry)
    yield registry
    rk_prometheus.unregister(collector, registry=registry)


@pytest.fixture
def promtool() -> str:
    """The promtool binary; when missing, a skip (a failure if services are required)."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("RESILIENCE_KIT_REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is missing (Debian package 'prometheus'); .ci/run installs it")
        pytest.skip("promtool is missing (Debian package 'prometheus')")
    return found
