"""Decorated functions keep their signatures for type checkers: mypy checks an example file."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


@pytest.mark.slow
def test_resilient_keeps_signatures_for_mypy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYPYPATH", str(SRC))  # this checkout's package, not an installed one
    example = str(HERE / "resilient_types.py")
    stdout, stderr, status = api.run(
        ["--strict", "--warn-unused-ignores", "--no-error-summary", example]
    )
    assert status == 0, stdout + stderr
