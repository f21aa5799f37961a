"""Developer tasks: ``nox -l`` lists them; ``python3 dev.py SESSION`` runs one without nox."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
# A session whose Python is missing fails instead of passing silently (compat in CI).
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")

# Served with the site, never from a CDN: the docs sessions unpack these from their npm packages
# (npm checks the package's integrity; the digest pins the file). Mermaid draws the diagrams;
# iframe-worker lets the search run in a page opened from disk.
VENDORED = (
    (
        "mermaid@11.12.3",
        "package/dist/mermaid.min.js",
        Path("docs/assets/javascripts/mermaid.min.js"),
        "71dc54e481779b526de5e615c2eb00c99fa5acb75da9c5524d02e333d2fda89a",
    ),
    (
        "iframe-worker@1.0.4",
        "package/shim/index.js",
        Path("docs/assets/javascripts/iframe-worker-shim.js"),
        "e8e412dbcfea9b7e31b5ffa288d7b6035915e714c542f4176a0cdbe262fc9609",
    ),
)


def group(name: str) -> list[str]:
    """The requirements of one dependency group in pyproject.toml."""
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: unit, property and integration (real PostgreSQL and Redis)."""
    session.install("-e", ".[all]", *group("test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[all]", *group("typecheck"))
    session.run("mypy", "--strict", "src")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vendor_scripts(session: nox.Session) -> None:
    """Put the site's third-party scripts into docs/assets (from npm, once per version)."""
    for spec, member, target, digest in VENDORED:
        if target.exists() and _sha256(target.read_bytes()) == digest:
            continue
        if shutil.which("npm") is None:
            session.error(f"npm is needed once to unpack {spec} for the docs (apt-get install npm)")
        with tempfile.TemporaryDirectory() as tmp:
            session.run(
                "npm", "pack", spec, "--pack-destination", tmp, "--silent",
                external=True, silent=True,
            )  # fmt: skip
            (tarball,) = Path(tmp).glob("*.tgz")
            with tarfile.open(tarball) as tar:
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted else b""
        if _sha256(data) != digest:
            session.error(f"{spec}: {member} is not the file this project pinned")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        session.log(f"{spec}: {member} unpacked into {target}")


def build_site(session: nox.Session) -> None:
    """Zensical builds the site from mkdocs.yml into site/; --strict: a warning fails it."""
    vendor_scripts(session)
    session.run("zensical", "build", "--strict", "--clean")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site in strict mode (a broken reference or link fails it)."""
    session.install("-e", ".[all]", *group("docs"))
    build_site(session)


@nox.session(name="docs_check")
def docs_check(session: nox.Session) -> None:
    """Build the site, then open every page from disk in headless Chromium.

    Fails on a console error, a broken link or anchor, a raw Sphinx role or a collapsed
    ``>>>`` example in the rendered text, or a diagram that did not render; saves screenshots
    of the home page and the breaker pages under site/_screenshots/. Needs Debian's chromium
    (``/usr/bin/chromium``, or set ``CHROMIUM``); Playwright drives it, no browser is
    downloaded.
    """
    session.install("-e", ".[all]", *group("docs-check"))
    build_site(session)
    session.run("python", "tests/docs/site_check.py", "site", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers: timings, then instruction counts under valgrind's callgrind.

    ``nox -s bench -- --quick`` only checks every case runs; ``-- --instructions`` counts
    instructions only (``--quick --instructions``: every case counts, a smoke check). CI runs
    both quick forms.
    """
    session.install("-e", ".[all]", "-r", "benchmarks/requirements.txt")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the example: a breaker that opens, rejects and recovers, printed as it happens."""
    session.install("-e", ".")
    session.run("python", "examples/quickstart.py", *session.posargs)


@nox.session(python=["3.10", "3.12", "3.13"])
def compat(session: nox.Session) -> None:
    """The unit and property tests on the other supported Pythons (CI runs it too)."""
    session.install("-e", ".[all]", *group("test"))
    session.run("pytest", "tests/unit", "tests/property", "tests/static", "-q", *session.posargs)
