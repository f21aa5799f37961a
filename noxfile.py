"""Developer tasks: ``nox -l`` lists them; ``python3 dev.py SESSION`` runs one without nox."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
# A session whose Python is missing fails instead of passing silently (compat in CI).
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


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


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site in strict mode (a broken reference fails it)."""
    session.install("-e", ".[all]", *group("docs"))
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers: timings, then instruction counts under valgrind's callgrind.

    ``nox -s bench -- --quick`` only checks every case runs; ``-- --instructions`` counts
    instructions only (``--quick --instructions``: every case counts, a smoke check).
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
