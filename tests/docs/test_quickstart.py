"""examples/quickstart.py prints what happens in the order it happens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_transition_is_printed_after_the_call_that_caused_it() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    opened = next(i for i, line in enumerate(lines) if "CLOSED -> OPEN" in line)
    # Three failures open a breaker whose threshold is three: the third call's line comes first.
    assert sum("failed" in line for line in lines[:opened]) == 3
    assert lines[opened - 1].startswith("charge(30) failed")
    trial = next(i for i, line in enumerate(lines) if "OPEN -> HALF_OPEN" in line)
    assert lines[trial - 1] == "charge(60) -> charged 60"
    assert "HALF_OPEN -> CLOSED" in lines[trial + 1]
    assert lines[-1] == "stats: state=CLOSED calls=7 failures=3 rejected=2"
