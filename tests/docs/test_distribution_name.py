"""Every install command names the distribution, ``resilience-kit-py``.

``resilience-kit`` (without ``-py``) is an unrelated project on PyPI that also installs a
``resilience_kit`` package: a ``pip install resilience-kit[extra]`` copied from a page, a
docstring or an error message installs it. Only the sentences that warn about it may name it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "resilience-kit-py"
# The other project's name, as an install command or requirement would spell it (an extra in
# brackets, or after "pip install" with or without quotes), but not our own name.
WRONG = re.compile(
    r"(?:resilience[-_.]kit(?![-_.]py)\[|pip install ['\"]?resilience[-_.]kit(?![-_.]py))"
)


def _texts() -> list[Path]:
    paths = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml"]
    for folder, pattern in (("docs", "*.md"), ("src", "*.py"), ("examples", "*.py")):
        paths += sorted((ROOT / folder).rglob(pattern))
    return paths


def test_the_distribution_is_named_resilience_kit_py() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^name = "resilience-kit-py"$', pyproject, re.MULTILINE)
    assert f'all = ["{DISTRIBUTION}[' in pyproject  # the `all` extra names its own distribution


def test_no_install_command_names_the_unrelated_project() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _texts()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WRONG.search(line)
    ]
    assert not found, "install commands naming `resilience-kit`:\n" + "\n".join(found)


def test_the_pattern_tells_the_two_names_apart() -> None:
    assert WRONG.search('pip install "resilience-kit[redis]"')
    assert WRONG.search("pip install resilience-kit")
    assert WRONG.search("requires resilience_kit[msgpack]")
    assert not WRONG.search('pip install "resilience-kit-py[redis]"')
    assert not WRONG.search("pip install resilience-kit-py")
    assert not WRONG.search("(`resilience-kit`, without `-py`, is an unrelated project)")
