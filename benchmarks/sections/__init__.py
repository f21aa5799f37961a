"""The sections of the benchmark page: every public module here defines ``SECTION``.

Adding a section is adding one module; nothing else needs to change.
"""

from __future__ import annotations

import importlib
import pkgutil

from benchmarks._harness import Section


def load_sections(only: set[str] | None = None) -> list[Section]:
    """Every section, in page order; ``only`` keeps the sections with those keys."""
    sections = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        section: Section = module.SECTION
        if only is None or section.key in only:
            sections.append(section)
    return sorted(sections, key=lambda s: (s.order, s.key))
