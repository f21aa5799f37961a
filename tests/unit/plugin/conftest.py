"""Run pytest on small test files with the resilience_kit plugin loaded as users load it."""

from __future__ import annotations

import gc
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import resilience_kit
import resilience_kit.chaos
import resilience_kit.pytest_plugin
import resilience_kit.testing

# Imported here, before any run: pytester's in-process runs drop the modules a run imported, and
# a module imported afresh in a later run would be a second copy with its own classes and state.

ENTRY_POINTS = "[pytest11]\nresilience_kit = resilience_kit.pytest_plugin\n"


@pytest.fixture
def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.RunResult]:
    """Write test files, run pytest in-process on them, return the result.

    The plugin is loaded through a ``pytest11`` entry point, exactly like an installed package:
    a distribution's metadata is put on ``sys.path`` for the run. When the package really is
    installed (nox installs it editable), pytest finds two entry points with one name and loads
    the first only, so the plugin is never registered twice.

    ``subprocess=True`` runs pytest in a fresh interpreter: pytest keeps some state per process
    (the markers it has seen), which a run about disabling the plugin must not inherit.
    """
    entry = pytester.mkdir("_entry_point")
    dist = entry / "resilience_kit_under_test-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: resilience-kit-under-test\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    pytester.syspathinsert(entry)
    package_root = Path(resilience_kit.__file__).parent.parent
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(entry), str(package_root), os.environ.get("PYTHONPATH", "")]),
    )

    def run(*args: str, ini: str = "", subprocess: bool = False, **files: str) -> pytest.RunResult:
        pytester.makeini(
            "[pytest]\n"
            "asyncio_default_fixture_loop_scope = function\n"
            "addopts = --strict-markers -p no:cacheprovider\n"
            "filterwarnings = error\n" + textwrap.dedent(ini)
        )
        for name, source in files.items():
            (pytester.path / f"{name}.py").write_text(textwrap.dedent(source))
        # Breakers made by an earlier run's modules live in reference cycles; free their names.
        gc.collect()
        if subprocess:
            return pytester.runpytest_subprocess(*args)
        return pytester.runpytest(*args)

    return run
