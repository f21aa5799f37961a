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

# Mermaid (the diagrams) is served with the site, never from a CDN: the docs sessions unpack it
# from the npm package, checked against this digest of dist/mermaid.min.js.
MERMAID_VERSION = "11.12.3"
MERMAID_SHA256 = "71dc54e481779b526de5e615c2eb00c99fa5acb75da9c5524d02e333d2fda89a"
MERMAID_JS = Path("docs/assets/javascripts/mermaid.min.js")
DOCS_ENV = {"NO_MKDOCS_2_WARNING": "1"}


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


def vendor_mermaid(session: nox.Session) -> None:
    """Put mermaid.min.js into docs/assets (from the npm package, once per version)."""
    if MERMAID_JS.exists() and _sha256(MERMAID_JS.read_bytes()) == MERMAID_SHA256:
        return
    if shutil.which("npm") is None:
        session.error("npm is needed once to unpack Mermaid for the docs (apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        session.run(
            "npm", "pack", f"mermaid@{MERMAID_VERSION}", "--pack-destination", tmp, "--silent",
            external=True, silent=True,
        )  # fmt: skip
        with tarfile.open(Path(tmp) / f"mermaid-{MERMAID_VERSION}.tgz") as tar:
            member = tar.extractfile("package/dist/mermaid.min.js")
            data = member.read() if member else b""
    if _sha256(data) != MERMAID_SHA256:
        session.error(f"mermaid@{MERMAID_VERSION}: dist/mermaid.min.js has another digest")
    MERMAID_JS.parent.mkdir(parents=True, exist_ok=True)
    MERMAID_JS.write_bytes(data)
    session.log(f"Mermaid {MERMAID_VERSION} unpacked into {MERMAID_JS}")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site in strict mode (a broken reference fails it)."""
    session.install("-e", ".[all]", *group("docs"))
    vendor_mermaid(session)
    session.run("mkdocs", "build", "--strict", *session.posargs, env=DOCS_ENV)


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
    vendor_mermaid(session)
    session.run("mkdocs", "build", "--strict", env=DOCS_ENV)
    session.run("python", "tests/docs/site_check.py", "site", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers; ``nox -s bench -- --quick`` only checks every case runs."""
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
