"""Every example in the documentation runs: the pages, the README and the docstrings.

The rules are in codeblocks.py. A page is one test: its blocks run in order in one namespace,
in a fresh working directory that the page's file blocks (``# app.py``) are written into. A page
that defines tests (``def test_...``) is a test module: pytest runs it, in a subprocess, and
every test it defines must pass. A failure names the page, the block and its line; tracebacks
point into the page itself.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import symtable
import sys
import traceback
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from codeblocks import Block, blocks, docstrings

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page.read_text(encoding="utf-8"), page) if b.runs]


def _defines_tests(code: str) -> list[str]:
    return [
        node.name
        for node in ast.parse(code).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    ]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory on sys.path; the modules the page wrote are forgotten after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if getattr(module, "__file__", None) and str(tmp_path) in str(module.__file__):
            del sys.modules[name]


def _fail(block: Block, error: BaseException) -> None:
    frames = traceback.extract_tb(error.__traceback__)
    # Show the frames from the page (or the file blocks it wrote) onwards, not the runner's.
    shown = [f for f in frames if f.filename != __file__] or frames
    text = "".join(traceback.format_list(shown)) + "".join(
        traceback.format_exception_only(type(error), error)
    )
    pytest.fail(f"{block.where()} failed:\n{text}", pytrace=False)


def run_blocks(runnable: list[Block], namespace: dict[str, object], workdir: Path) -> None:
    """Run `runnable` in order in `namespace`, writing file blocks into `workdir`."""
    for block in runnable:
        if block.file_name is not None:
            target = workdir / block.file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.padded(), encoding="utf-8")
            continue
        if block.language == "pycon":
            _run_doctest(block, namespace)
            continue
        try:
            exec(compile(block.padded(), _relative(block.source), "exec"), namespace)  # noqa: S102
        except Exception as error:
            _fail(block, error)


def _run_doctest(block: Block, namespace: dict[str, object]) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.code, namespace, block.where(), _relative(block.source), block.line - 1
    )
    output: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=output.append, clear_globs=False)
    if runner.failures:
        pytest.fail(f"{block.where()} failed:\n{''.join(output)}", pytrace=False)


PAGES_WITH_EXAMPLES = [page for page in PAGES if _runnable(page)]


def test_the_pages_with_examples_are_found() -> None:
    names = {_relative(page) for page in PAGES_WITH_EXAMPLES}
    assert {"README.md", "docs/getting-started.md", "docs/testing.md"} <= names


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=_relative)
def test_page_examples_run(page: Path, workdir: Path, request: pytest.FixtureRequest) -> None:
    runnable = _runnable(page)
    # Tests defined inline, or in a file block named like a test module (`# test_app.py`).
    tests = [
        name
        for block in runnable
        if block.language != "pycon"
        and (block.file_name is None or Path(block.file_name).name.startswith("test_"))
        for name in _defines_tests(block.code)
    ]
    if tests:
        _run_as_test_module(page, runnable, tests, request.getfixturevalue("pytester"))
        return
    module = types.ModuleType(f"docs_page_{page.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module  # dataclasses and pickling look their module up
    try:
        run_blocks(runnable, module.__dict__, workdir)
    finally:
        del sys.modules[module.__name__]


def _run_as_test_module(
    page: Path, runnable: list[Block], tests: list[str], pytester: pytest.Pytester
) -> None:
    """The page's blocks as one test module, its line numbers the page's; every test passes."""
    lines: list[str] = []
    for block in runnable:
        if block.language == "pycon":
            pytest.fail(f"{block.where()}: a page that defines tests cannot hold a doctest block")
        if block.file_name is not None:
            target = pytester.path / block.file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.padded(), encoding="utf-8")
            continue
        padding = block.line - 1 - len(lines)
        lines.extend([""] * padding)
        lines.extend(block.code.rstrip("\n").split("\n"))
    # Named after the page (docs/getting-started.md: test_getting_started_md.py).
    module = pytester.path / f"test_{page.stem.replace('-', '_')}_md.py"
    module.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # As in this repository: async tests need no marker (asyncio auto mode).
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    if result.ret != 0 or outcomes.get("passed") != len(tests) or len(outcomes) != 1:
        pytest.fail(
            f"{_relative(page)}: the tests it defines ({', '.join(tests)}) must all pass;"
            f" line numbers below are the page's.\n{result.stdout.str()}",
            pytrace=False,
        )


def _source_files() -> list[Path]:
    return sorted((SRC / "resilience_kit").rglob("*.py"))


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


DOCSTRINGS_WITH_EXAMPLES = [
    doc
    for path in _source_files()
    for doc in docstrings(path, _module_name(path))
    if any(block.runs for block in doc.blocks())
]


@pytest.mark.parametrize("doc", DOCSTRINGS_WITH_EXAMPLES, ids=lambda doc: doc.qualname)
def test_docstring_examples_run(doc: object, workdir: Path) -> None:
    runnable = [block for block in doc.blocks() if block.runs]  # type: ignore[attr-defined]
    module = types.ModuleType("docstring_example")
    sys.modules[module.__name__] = module
    try:
        run_blocks(runnable, module.__dict__, workdir)
    finally:
        del sys.modules[module.__name__]


def _bound_and_read(code: str, filename: str) -> tuple[set[str], set[str]]:
    """The names `code` binds at module level, and the module-level names it reads anywhere
    (in the bodies of its functions and classes too)."""
    top = symtable.symtable(code, filename, "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    read: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        read |= {
            symbol.get_name()
            for symbol in table.get_symbols()
            if symbol.is_referenced() and (table is top or symbol.is_global())
        }
        tables.extend(table.get_children())
    return bound, read


BUILTINS = set(dir(builtins)) | {"__name__", "__file__"}


def _undefined_names(runnable: list[Block]) -> list[str]:
    """Names a block reads that nothing on its page (or its own file block) defines.

    Running a page does not find them when they are read only inside a function it never
    calls (`return redis_client.get(key)`): the reader who copies the example finds them.
    """
    code = [b for b in runnable if b.language != "pycon"]
    page_bound = _bound_and_read("\n".join(b.code for b in code if b.file_name is None), "page")[0]
    problems = []
    for block in code:
        bound, read = _bound_and_read(block.code, block.where())
        known = bound if block.file_name is not None else page_bound
        missing = sorted(read - known - BUILTINS)
        if missing:
            problems.append(f"{block.where()}: {', '.join(missing)}")
    return problems


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=_relative)
def test_page_examples_use_only_names_they_define(page: Path) -> None:
    problems = _undefined_names(_runnable(page))
    assert not problems, "undefined names in examples:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", DOCSTRINGS_WITH_EXAMPLES, ids=lambda doc: doc.qualname)
def test_docstring_examples_use_only_names_they_define(doc: object) -> None:
    runnable = [block for block in doc.blocks() if block.runs]  # type: ignore[attr-defined]
    problems = _undefined_names(runnable)
    assert not problems, "undefined names in examples:\n" + "\n".join(problems)


def test_an_undefined_name_in_a_function_body_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport logging\n\nlog = logging.getLogger(__name__)\n\n\n"
        "def get(key):\n    log.info(key)\n    return redis_client.get(key)\n```\n",
        encoding="utf-8",
    )
    (problem,) = _undefined_names(_runnable(page))
    assert problem.endswith(": redis_client")


def test_docstrings_have_examples_to_run() -> None:
    # The collector finds them: if this list empties, a change to the finder broke it.
    assert len(DOCSTRINGS_WITH_EXAMPLES) >= 5
