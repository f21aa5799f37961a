"""@cached keeps signatures for type checkers: functions, async functions and methods."""

from __future__ import annotations

from pathlib import Path

import pytest

SOURCE = """
from resilience_kit.cache import cached


@cached("t-sync")
def load(user_id: int, lang: str = "en") -> list[int]:
    return [user_id]


@cached("t-async")
async def aload(user_id: int) -> dict[str, int]:
    return {}


class Repo:
    @cached("t-method")
    def find(self, item: int) -> str:
        return ""

    @cached("t-amethod")
    async def afind(self, item: int) -> bytes:
        return b""


async def main() -> None:
    reveal_type(load(1))
    reveal_type(await aload(1))
    reveal_type(load.invalidate(1))
    reveal_type(aload.invalidate(1))
    reveal_type(Repo().find(3))
    reveal_type(await Repo().afind(3))
    load("one")
    Repo().find("three")
"""


@pytest.mark.slow
def test_signatures_survive_decoration(tmp_path: Path) -> None:
    from mypy import api

    module = tmp_path / "typed_cache_use.py"
    module.write_text(SOURCE)
    out, _, _ = api.run(["--strict", "--no-incremental", str(module)])
    revealed = [
        line.split("Revealed type is ")[1] for line in out.splitlines() if "Revealed" in line
    ]
    assert revealed == [
        '"list[int]"',
        '"dict[str, int]"',
        '"None"',
        '"typing.Awaitable[None]"',
        '"str"',
        '"bytes"',
    ]
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert all("incompatible type" in line for line in errors)
