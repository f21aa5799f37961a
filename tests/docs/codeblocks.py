"""Find the code examples in Markdown pages and docstrings, keeping their line numbers.

The convention (GUIDE.md, "Docs code blocks"): every fenced ```python block in docs/*.md and
README.md runs; the blocks of one page run in order in one namespace; a block preceded by the
line ``<!-- fragment -->`` is a deliberate fragment and does not run. Two additions:

* a block whose first line is a comment naming a Python file (``# app.py``) is that file: it is
  written into the page's working directory, importable by the blocks after it, and not run
  inline (the page's tests import it as a user's tests import their application);
* a ```pycon block is a doctest: its ``>>>`` lines run in the page's namespace and their output
  must match.

Docstrings follow the same rules for their fenced examples: the blocks of one docstring share a
namespace.
"""

from __future__ import annotations

import ast
import itertools
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAGMENT = "<!-- fragment -->"
RUN_LANGUAGES = {"python", "py"}
DOCTEST_LANGUAGES = {"pycon"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_FILE_COMMENT = re.compile(r"^#\s*(?P<name>[A-Za-z_][\w/]*\.py)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its code (dedented) and where it is."""

    source: Path
    index: int  # 1-based among the page's (or docstring's) blocks of any language
    line: int  # 1-based line of the first line of code, in `source`
    language: str
    code: str
    fragment: bool

    @property
    def runs(self) -> bool:
        return not self.fragment and self.language in RUN_LANGUAGES | DOCTEST_LANGUAGES

    @property
    def file_name(self) -> str | None:
        """The file this block stands for (``# app.py`` on its first line), if any."""
        first = self.code.split("\n", 1)[0]
        match = _FILE_COMMENT.match(first)
        return match["name"] if match else None

    def padded(self) -> str:
        """The code with blank lines before it, so line numbers are those of `source`."""
        return "\n" * (self.line - 1) + self.code

    def where(self) -> str:
        source = self.source
        if source.is_absolute() and source.is_relative_to(ROOT):
            source = source.relative_to(ROOT)
        return f"{source}, block {self.index} ({self.language}, line {self.line})"


def blocks(text: str, source: Path, *, first_line: int = 1) -> list[Block]:
    """The fenced blocks of Markdown `text` (top-level fences only: a fence shown inside
    another fence is content). `first_line` is the line of `text`'s first line in `source`.
    """
    lines = text.split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or (not opening["info"] and not _is_opening(lines, i)):
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].split()[0].lower() if opening["info"] else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"]
            ):
                break
            body.append(lines[j])
            j += 1
        previous = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        found.append(
            Block(
                source=source,
                index=len(found) + 1,
                line=first_line + i + 1,
                language=language,
                code=_dedent(body, indent),
                fragment=previous == FRAGMENT,
            )
        )
        i = j + 1
    return found


def _is_opening(lines: list[str], i: int) -> bool:
    """A bare fence opens a block when a matching bare fence closes it further down."""
    fence = _FENCE.match(lines[i])
    assert fence is not None
    return any(
        (match := _FENCE.match(line)) is not None and match["fence"] == fence["fence"]
        for line in lines[i + 1 :]
    )


def _dedent(body: list[str], indent: str) -> str:
    stripped = [line[len(indent) :] if line.startswith(indent) else line for line in body]
    return textwrap.dedent("\n".join(stripped)).rstrip() + "\n"


@dataclass(frozen=True)
class Docstring:
    """A docstring in a source file: the dotted name of what it documents, and where."""

    path: Path
    qualname: str
    line: int  # line of the docstring's first line (the one with the opening quotes)
    text: str  # as written, not cleaned: its lines map 1:1 onto the file's

    def blocks(self) -> list[Block]:
        return blocks(self.text, self.path, first_line=self.line)


def docstrings(path: Path, module: str) -> list[Docstring]:
    """Every module, class and function docstring in the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Docstring] = []

    def visit(node: ast.AST, qualname: str) -> None:
        body = getattr(node, "body", None)
        if isinstance(body, list) and body:
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.append(Docstring(path, qualname, first.lineno, first.value.value))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{qualname}.{child.name}")
            elif isinstance(child, (ast.If, ast.Try)):  # definitions under `if TYPE_CHECKING:`
                for grandchild in ast.iter_child_nodes(child):
                    if isinstance(grandchild, (ast.ClassDef, ast.FunctionDef)):
                        visit(grandchild, f"{qualname}.{grandchild.name}")
        # Attribute docstrings: a string right after an assignment documents it.
        if isinstance(body, list):
            for before, after in itertools.pairwise(body):
                if (
                    isinstance(before, (ast.Assign, ast.AnnAssign))
                    and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                ):
                    target = before.targets[0] if isinstance(before, ast.Assign) else before.target
                    name = target.id if isinstance(target, ast.Name) else ast.unparse(target)
                    found.append(
                        Docstring(path, f"{qualname}.{name}", after.lineno, after.value.value)
                    )

    visit(tree, module)
    return found
