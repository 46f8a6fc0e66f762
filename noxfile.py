"""Project tasks: tests, lint, typecheck, docs, bench, soak."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

# aioresponses (a test tool) breaks on aiohttp 3.14; the pin lives here, not in
# the package's dependencies, so users are free to run the latest aiohttp.
TEST_CONSTRAINTS = "tests/constraints.txt"
COVERAGE_FLOOR = "95"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage."""
    session.install("-c", TEST_CONSTRAINTS, "-e", ".[test,cli]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-c", TEST_CONSTRAINTS, "-e", ".[cli,test]", "mypy")
    session.run("mypy", "--strict", "zomro_async")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks of docs/performance.md; a missed goal is reported, not a failure."""
    session.install("-e", ".", "psutil")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The chaos soak at full size: 1,000+ instances under every fault at once."""
    session.install("-e", ".")
    session.run("python", "benchmarks/soak.py", *(session.posargs or ["--instances", "1000"]))


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: mkdocs build --strict (any warning fails)."""
    # ruff only formats the reference's signatures.
    session.install("-e", ".", "mkdocs", "mkdocs-material", "mkdocstrings[python]", "ruff")
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # Material's banner about MkDocs 2.0
    session.run("mkdocs", "build", "--strict", *session.posargs)
