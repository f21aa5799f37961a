#!/usr/bin/env python3
"""Run a nox session with nothing but Python 3 installed.

    python3 dev.py demo        # the example
    python3 dev.py tests       # the whole test suite
    python3 dev.py lint typecheck docs bench

The first run makes ``.venv/`` with nox and uv in it; every session then builds its own
environment under ``.nox/`` from pyproject.toml, so the versions tested are the ones declared.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
TOOLS = ("nox>=2024.10.9", "uv>=0.4")


def ensure_tools() -> Path:
    nox = BIN / "nox"
    if not nox.exists():
        print(f"dev.py: creating {VENV} with nox and uv (first run only)", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        subprocess.run([str(BIN / "python"), "-m", "pip", "install", "-q", *TOOLS], check=True)
    return nox


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    sessions, _, extra = (
        (argv[: argv.index("--")], "--", argv[argv.index("--") + 1 :])
        if "--" in argv
        else (argv, "", [])
    )
    nox = ensure_tools()
    # uv must be found on PATH by nox's "uv|virtualenv" backend.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(nox), "-s", *sessions]
    if extra:
        command += ["--", *extra]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
