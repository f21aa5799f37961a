"""Docstrings are Markdown for mkdocstrings, and every public name has a place in the reference.

A raw Sphinx role (``:class:`X```) or a ``>>>`` example shows as plain text on the site (the
examples collapse into one paragraph). /work/helpers/convert_roles.py (kept outside the repo by
the docs work; any equivalent edit will do) converts both: roles to cross-references such as
``[`CircuitBreaker`][resilience_kit.CircuitBreaker]``, examples to fenced ```python blocks,
which test_docs_examples.py runs.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest
from codeblocks import Docstring, docstrings

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
ROLE = re.compile(r":(?:py:)?[a-z]+:`[^`]*`")
PROMPT = re.compile(r"^\s*>>> ", re.MULTILINE)
DIRECTIVE = re.compile(r"^:::\s*(?P<ident>[\w.]+)\s*$", re.MULTILINE)

# Modules a user imports from; their __all__ is the public surface.
PUBLIC_MODULES = (
    "resilience_kit",
    "resilience_kit.errors",
    "resilience_kit.clock",
    "resilience_kit.breaker",
    "resilience_kit.breaker.storage",
    "resilience_kit.retry",
    "resilience_kit.composition",
    "resilience_kit.testing",
    "resilience_kit.chaos",
    "resilience_kit.pytest_plugin",
    "resilience_kit.sql",
    "resilience_kit.health",
    "resilience_kit.prometheus",
    "resilience_kit.otel",
    "resilience_kit.integrations.fastapi",
    "resilience_kit.integrations.asgi",
    "resilience_kit.integrations.wsgi",
)
NOT_IN_REFERENCE = {"__version__"}


def _all_docstrings() -> list[Docstring]:
    found = []
    for path in sorted((SRC / "resilience_kit").rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found.extend(docstrings(path, module))
    return found


def _where(doc: Docstring, offset: int) -> str:
    line = doc.line + doc.text.count("\n", 0, offset)
    return f"{doc.path.relative_to(ROOT)}:{line} ({doc.qualname})"


def test_no_docstring_uses_a_sphinx_role() -> None:
    raw = [
        f"{_where(doc, match.start())}: {match.group()}"
        for doc in _all_docstrings()
        for match in ROLE.finditer(doc.text)
    ]
    assert not raw, (
        "Sphinx roles render as raw text in the docs; use mkdocstrings cross-references, e.g."
        " [`CircuitBreaker`][resilience_kit.CircuitBreaker] (python /work/helpers/"
        "convert_roles.py converts them):\n" + "\n".join(raw)
    )


def test_docstring_examples_are_fenced_not_doctest() -> None:
    raw = [
        _where(doc, match.start())
        for doc in _all_docstrings()
        if not _inside_fences(doc.text)
        for match in PROMPT.finditer(doc.text)
    ]
    assert not raw, (
        "'>>>' examples collapse into a paragraph on the site: write a fenced ```python block"
        " (assert what the example shows):\n" + "\n".join(raw)
    )


def _inside_fences(text: str) -> bool:
    """True if every >>> line of `text` sits inside a fenced block (a pycon block, say)."""
    fenced = False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            fenced = not fenced
        elif PROMPT.match(line) and not fenced:
            return False
    return True


def _documented() -> set[int]:
    """id() of every object the reference pages render (`::: path`, or a members: list)."""
    ids: set[int] = set()
    for page in (ROOT / "docs" / "reference").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        for match in DIRECTIVE.finditer(text):
            obj = _resolve(match["ident"])
            ids.add(id(obj))
            block = text[match.end() :].split("\n\n", 1)[0]
            members = re.search(r"members:\s*\[([^\]]*)\]", block)
            for name in members.group(1).split(",") if members else []:
                ids.add(id(getattr(obj, name.strip())))
    return ids


def _has_a_page(value: object) -> bool:
    """A module (`resilience_kit.retry`, callable) is documented by the page of its names."""
    if not isinstance(value, types.ModuleType):
        return False
    prefix = value.__name__ + "."
    return any(
        match["ident"].startswith(prefix)
        for page in (ROOT / "docs" / "reference").glob("*.md")
        for match in DIRECTIVE.finditer(page.read_text(encoding="utf-8"))
    )


def _resolve(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise LookupError(path)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name: str) -> None:
    module = importlib.import_module(module_name)
    documented = _documented()
    missing = [
        f"{module_name}.{name}"
        for name in module.__all__
        if name not in NOT_IN_REFERENCE
        and id(getattr(module, name)) not in documented
        and not _has_a_page(getattr(module, name))
    ]
    assert not missing, (
        "public names without an entry in docs/reference/*.md (add `::: path` to the"
        " primitive's page):\n" + "\n".join(missing)
    )
