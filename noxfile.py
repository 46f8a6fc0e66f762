"""Project tasks: tests (quick, lowest and latest dependencies), the built wheel, lint,
typecheck, docs, bench, soak."""

from __future__ import annotations

import shutil
import tarfile
from importlib.metadata import distributions
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
# The matrix sessions run on whichever of PYTHONS this machine has: a missing one
# is skipped (also on CI, where nox would otherwise fail it), never downloaded.
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"

PYTHONS = ["3.11", "3.12", "3.13", "3.14"]
COVERAGE_FLOOR = "95"
DIST = Path(".nox/dist")  # what `nox -s build` makes and `nox -s wheel` installs
# The versions a dependency session prints once it has resolved them.
REPORTED = [
    "aiohttp",
    "attrs",
    "cattrs",
    "tenacity",
    "click",
    "rich",
    "aioresponses",
    "pytest",
    "pytest-asyncio",
    "hypothesis",
]


def _report_versions(session: nox.Session) -> None:
    """Log the versions the session's venv resolved (read from its metadata)."""
    (site,) = Path(session.virtualenv.location).glob("lib/python*/site-packages")
    found = {
        d.metadata["Name"].lower().replace("_", "-"): d.version
        for d in distributions(path=[str(site)])
    }
    versions = ", ".join(f"{name} {found.get(name, '-')}" for name in REPORTED)
    session.log(f"resolved ({site.parent.name}): {versions}")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage: the quick check of the README."""
    # With the speedups extra, so orjson reads the answers here; the other test
    # sessions leave it out, so the standard library's json reads them there.
    session.install("-e", ".[test,cli,speedups]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}")


@nox.session(python=PYTHONS, venv_backend="uv", reuse_venv=False)
def tests_lowest(session: nox.Session) -> None:
    """The suite on the lowest versions pyproject.toml allows for its direct dependencies."""
    # uv's lowest-direct takes each floor of pyproject.toml (runtime, cli and test
    # extras) as it is written; transitive dependencies resolve to their newest.
    session.install("--resolution", "lowest-direct", "-e", ".[test,cli]")
    _report_versions(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS, venv_backend="uv", reuse_venv=False)
def tests_latest(session: nox.Session) -> None:
    """The suite on the newest release of every dependency, as a fresh `pip install` gets."""
    # aioresponses on aiohttp >= 3.14 is mended by tests/_aioresponses_compat.py,
    # so the whole suite runs here, integration tests, examples, CLI and soak included.
    session.install("--upgrade", "-e", ".[test,cli]")
    _report_versions(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(venv_backend="uv", reuse_venv=False)
def build(session: nox.Session) -> None:
    """The sdist, and the wheel built from it (python -m build), both through twine check."""
    shutil.rmtree(DIST, ignore_errors=True)
    session.install("build[uv]", "twine")
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(DIST))
    session.run("twine", "check", "--strict", *(str(p) for p in sorted(DIST.iterdir())))


@nox.session(python=PYTHONS, venv_backend="uv", reuse_venv=False, requires=["build"])
def wheel(session: nox.Session) -> None:
    """The built wheel in a fresh venv: the sdist's tests and examples, the plugin, --version."""
    (wheel_file,) = DIST.glob("*.whl")
    (sdist_file,) = DIST.glob("*.tar.gz")
    session.install(f"{wheel_file}[test,cli]")
    _report_versions(session)

    # The tests come from the sdist (so it must hold all they need), without the
    # sdist's copy of the package: every import is of the installed wheel.
    tmp = Path(session.create_tmp())
    with tarfile.open(sdist_file) as archive:
        archive.extractall(tmp, filter="data")
    tree = (tmp / sdist_file.name.removesuffix(".tar.gz")).resolve()
    shutil.rmtree(tree / "zomro_async")
    session.chdir(tree)
    # Imported from here, the package is still the wheel's, with one version.
    code = "import zomro_async as z; print(z.__file__, z.__version__)"
    where, imported_version = (session.run("python", "-c", code, silent=True) or "? ?").split()
    version = tree.name.removeprefix("zomro_async-")
    venv = Path(session.virtualenv.location).resolve()
    if venv not in Path(where).parents or imported_version != version:
        session.error(f"imported zomro_async {imported_version} from {where}")
    printed = (session.run("zomro-async", "--version", silent=True) or "").strip()
    session.log(f"zomro_async {imported_version} from {Path(where).parent}; {printed!r}")
    if printed != f"zomro-async, version {version}":
        session.error(f"zomro-async --version printed {printed!r}")

    # The whole suite, plugin by its entry point and examples included. test_layout
    # reads the package's source tree, which is the `tests` session's business.
    session.run("python", "-m", "pytest", "--ignore=tests/test_layout.py", *session.posargs)
    # The plugin named with -p, as with autoloading off, finds its fixtures.
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "pytest_asyncio.plugin",
        "-p",
        "zomro_async.testing.pytest_plugin",
        "--noconftest",
        "tests/testing/test_pytest_plugin.py",
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[cli,test]", "mypy")
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
