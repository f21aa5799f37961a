"""The example finder: which blocks run, with which code, and where they are."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from codeblocks import blocks, docstrings
from test_docs_examples import run_blocks

PAGE = Path(__file__).resolve().parents[2] / "page.md"  # named relative to the repository


def _page(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_python_blocks_run_with_their_line_numbers() -> None:
    found = blocks(
        _page("""
        # Title

        ```python
        x = 1
        ```

        ```bash
        pip install x
        ```

        ```py
        y = x + 1
        ```
        """),
        PAGE,
    )
    assert [(b.language, b.line, b.runs) for b in found] == [
        ("python", 4, True),
        ("bash", 8, False),
        ("py", 12, True),
    ]
    assert found[0].code == "x = 1\n"


def test_a_fragment_marker_on_the_line_before_stops_a_block() -> None:
    found = blocks(
        _page("""
        <!-- fragment -->
        ```python
        await something()
        ```

        <!-- fragment -->

        Some text.

        ```python
        z = 3
        ```
        """),
        PAGE,
    )
    assert [b.fragment for b in found] == [True, False]


def test_a_fence_shown_inside_a_longer_fence_is_content() -> None:
    found = blocks(
        _page("""
        ````markdown
        ```python
        not_run()
        ```
        ````
        """),
        PAGE,
    )
    assert [(b.language, b.runs) for b in found] == [("markdown", False)]
    assert "not_run()" in found[0].code


def test_blocks_in_admonitions_are_dedented() -> None:
    found = blocks(
        _page("""
        !!! note
            ```python
            if True:
                a = 1
            ```
        """),
        PAGE,
    )
    assert found[0].code == "if True:\n    a = 1\n"
    assert found[0].line == 3


def test_a_file_block_is_written_and_imported_not_run_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    found = blocks(
        _page("""
        ```python
        # shop_app_for_test.py
        PRICE = 7
        ```

        ```python
        from shop_app_for_test import PRICE

        total = PRICE * 2
        ```
        """),
        PAGE,
    )
    assert found[0].file_name == "shop_app_for_test.py"
    namespace: dict[str, object] = {}
    try:
        run_blocks([b for b in found if b.runs], namespace, tmp_path)
    finally:
        monkeypatch.delitem(__import__("sys").modules, "shop_app_for_test", raising=False)
    assert namespace["total"] == 14
    assert "PRICE" not in namespace or namespace["PRICE"] == 7  # imported, never run inline
    # The file keeps the page's line numbers: tracebacks point into the page.
    assert (tmp_path / "shop_app_for_test.py").read_text().split("\n")[2] == "PRICE = 7"


def test_a_failing_block_names_the_page_block_and_line(tmp_path: Path) -> None:
    found = blocks("# Title\n\n```python\nok = 1\nundefined_name\n```\n", PAGE)
    with pytest.raises(pytest.fail.Exception) as failure:
        run_blocks(found, {}, tmp_path)
    message = str(failure.value)
    assert message.startswith("page.md, block 1 (python, line 4) failed")
    assert 'page.md", line 5' in message  # the failing line, in the page
    assert "NameError" in message


def test_pycon_blocks_are_doctests(tmp_path: Path) -> None:
    good = blocks(_page("```pycon\n>>> 1 + 1\n2\n```\n"), PAGE)
    run_blocks(good, {}, tmp_path)
    bad = blocks(_page("```pycon\n>>> 1 + 1\n3\n```\n"), PAGE)
    with pytest.raises(pytest.fail.Exception, match=r"Expected:\s+3"):
        run_blocks(bad, {}, tmp_path)


def test_docstring_blocks_map_to_the_source_lines(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        _page('''
        def f():
            """Summary.

            Examples:
                ```python
                assert f() is None
                ```
            """
        ''')
    )
    (doc,) = [d for d in docstrings(source, "mod") if d.qualname == "mod.f"]
    (block,) = doc.blocks()
    assert block.code == "assert f() is None\n"
    assert source.read_text().split("\n")[block.line - 1].strip() == "assert f() is None"
