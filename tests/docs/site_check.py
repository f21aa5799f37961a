"""Open every page of the built site from disk in headless Chromium and check what a reader sees.

    python tests/docs/site_check.py site [--screenshots DIR] [--chromium PATH]

Run by ``nox -s docs_check`` after ``mkdocs build --strict``. Each page is loaded from a
``file://`` URL, as a reader who opens ``site/index.html`` gets it. A page fails on:

* a console error or an uncaught exception, or a resource (script, style, image) that did not
  load;
* a link to a file that does not exist, to a directory (from disk that is a directory
  listing, not a page), or to an anchor that the target page does not have;
* a raw Sphinx role (``:class:``) or a ``>>>`` prompt in the rendered text outside code: both
  mean a docstring was not written in Markdown;
* a Mermaid diagram that did not render (Mermaid is served with the site);
* on the home page, Getting started, Testing and the API reference, a code block wider than
  the column (cut at the right edge); elsewhere that is only reported.

Screenshots of the home page and the breaker pages are saved for review (default:
``site/_screenshots``). Chromium is Debian's (``/usr/bin/chromium``; ``$CHROMIUM`` overrides),
driven by Playwright's Python package, which downloads no browser of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from playwright.sync_api import ConsoleMessage, Page, Request, sync_playwright

SCREENSHOTS = {
    "index.html": "home.png",
    "breaker.html": "breaker.png",
    "reference/breaker.html": "reference-breaker.png",
}
# Chromium as root in a container, with no network: no sandbox, and no background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",  # the search index, loaded by a worker from disk
]
RAW_TEXT = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|exc|mod|obj|const|ref|doc):|>>> ")

# The text nodes a reader sees outside code, links' own text included.
VISIBLE_TEXT_JS = """
() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('code, pre, script, style, kbd, .md-search')) continue;
    found.push(node.textContent);
  }
  return found;
}
"""
LINKS_JS = """
() => Array.from(document.querySelectorAll('a[href]'))
  .filter(a => !a.closest('.md-search'))
  .map(a => [a.getAttribute('href'), a.href])
"""
# Code blocks wider than the column: the reader sees them cut at the right edge (they scroll).
OVERFLOW_JS = """
() => Array.from(document.querySelectorAll('pre > code'))
  .filter(code => code.scrollWidth > code.clientWidth + 1)
  .map(code => code.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''))
"""
# Pages whose code blocks must fit the column (the first-hour pages and the reference); on the
# others a wide block is reported as a note.
MUST_FIT = re.compile(r"^(index|getting-started|testing|reference/.*)\.html$")

# Material replaces each `pre.mermaid` with a `div.mermaid` holding the SVG in a closed shadow
# root: a rendered diagram shows as a div of some height, an unrendered one stays a <pre>.
MERMAID_JS = """
async () => {
  const rendered = d => d.tagName === 'DIV' && d.getBoundingClientRect().height > 40;
  const diagrams = () => Array.from(document.querySelectorAll('.mermaid'));
  for (let i = 0; i < 100 && !diagrams().every(rendered); i++) {
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  return diagrams().map(rendered);
}
"""


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"id", "name"} and value:
                self.ids.add(value)


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._ids: dict[Path, set[str]] = {}

    def pages(self) -> list[Path]:
        return sorted(
            path
            for path in self.root.rglob("*.html")
            if "_screenshots" not in path.parts and path.name != "404.html"
        )

    def ids(self, page: Path) -> set[str]:
        if page not in self._ids:
            parser = _Ids()
            parser.feed(page.read_text(encoding="utf-8"))
            self._ids[page] = parser.ids
        return self._ids[page]

    def link_problem(self, href: str, resolved: str) -> str | None:
        """Why the link is broken, or None. Only links into the site are followed."""
        target = urlsplit(resolved)
        if target.scheme in {"http", "https", "mailto", "data", "javascript"}:
            return None
        if target.scheme != "file":
            return f"unexpected link scheme: {href}"
        path = Path(unquote(target.path))
        if not path.exists():
            return f"no such file: {href}"
        if path.is_dir():
            return f"links to a directory (a listing from disk, not a page): {href}"
        if target.fragment and path.suffix == ".html":
            anchor = unquote(target.fragment)
            if anchor not in self.ids(path):
                return f"no anchor #{anchor} in {path.relative_to(self.root)}: {href}"
        return None


def check_page(page: Page, site: Site, path: Path, notes: list[str]) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def on_failed(request: Request) -> None:
        problems.append(f"did not load: {request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught error: {error}"))
    page.on("requestfailed", on_failed)
    try:
        page.goto(path.as_uri(), wait_until="load")
        rendered = page.evaluate(MERMAID_JS)
        problems.extend(
            f"Mermaid diagram {n} did not render" for n, ok in enumerate(rendered, 1) if not ok
        )
        for text in page.evaluate(VISIBLE_TEXT_JS):
            match = RAW_TEXT.search(text)
            if match:
                problems.append(f"raw {match.group().strip()!r} in the text: {text.strip()[:120]}")
        for line in page.evaluate(OVERFLOW_JS):
            name = str(path.relative_to(site.root))
            message = f"code wider than the column ({len(line)} chars): {line.strip()[:80]}"
            if MUST_FIT.match(name):
                problems.append(message)
            else:
                notes.append(f"note: {name}: {message}")
        for href, resolved in page.evaluate(LINKS_JS):
            problem = site.link_problem(href, resolved)
            if problem:
                problems.append(problem)
        page.wait_for_timeout(50)  # late console errors (deferred scripts)
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("requestfailed", on_failed)
    return sorted(set(problems))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--screenshots", type=Path)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    site = Site(args.site)
    shots = (args.screenshots or site.root / "_screenshots").resolve()
    if not Path(args.chromium).exists():
        print(f"site_check: no Chromium at {args.chromium} (apt-get install chromium)")
        return 2
    pages = site.pages()
    if not pages:
        print(f"site_check: no pages under {site.root}")
        return 2
    failures: dict[str, list[str]] = {}
    notes: list[str] = []
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        for path in pages:
            page = context.new_page()
            name = str(path.relative_to(site.root))
            problems = check_page(page, site, path, notes)
            if problems:
                failures[name] = problems
            if name in SCREENSHOTS:
                page.screenshot(path=shots / SCREENSHOTS[name], full_page=True)
            page.close()
        browser.close()
    for note in notes:
        print(note)
    for name, problems in failures.items():
        print(f"FAIL {name}")
        for problem in problems:
            print(f"    {problem}")
    print(f"site_check: screenshots in {shots}: {', '.join(SCREENSHOTS.values())}")
    print(f"site_check: {len(pages)} pages opened, {len(failures)} with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
