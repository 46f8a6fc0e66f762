"""The pytest code of README.md and docs/testing.md, run as shown by a pytest of its own.

Each run is a fresh `python -m pytest` in a temporary directory, so the plugin
comes from its entry point as in a user's project, in pytest-asyncio's default
(strict) mode, with none of this repository's settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TESTING = ROOT / "docs" / "testing.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
TEST_FUNCTION = re.compile(r"^(?:async )?def test_", re.MULTILINE)
# docs/testing.md's `conftest.py` that overrides `zomro_emulator`, with its settings.
OVERRIDE_MARK = "async def zomro_emulator(zomro_clock):"
# Checks that the override is the fixture the tests get, and `zomro_client` uses it.
OVERRIDE_CHECK = """\
import pytest


@pytest.mark.asyncio
async def test_the_override_is_used(zomro_emulator, zomro_client):
    assert zomro_emulator.config.fault_rate == 0.1
    assert zomro_client.base_url == zomro_emulator.url
"""


def python_blocks(path: Path) -> list[str]:
    return PYTHON_BLOCK.findall(path.read_text(encoding="utf-8"))


def readme_test() -> str:
    """The block under the README's "Test your own code against the emulator"."""
    text = README.read_text(encoding="utf-8")
    _, found, after = text.partition("Test your own code against the emulator")
    assert found, "README.md lost its testing paragraph"
    match = PYTHON_BLOCK.search(after)
    assert match is not None
    return match.group(1)


def run_pytest(directory: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m pytest` on `files`, written under `directory`, strict asyncio mode."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # An empty ini file makes `directory` the root: no configuration from above.
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
            "-W",
            "error",
            # pytest-asyncio's advice to projects that leave this setting unset, as
            # a user's may: not a fault of the code shown.
            "-W",
            'ignore:The configuration option "asyncio_default_fixture_loop_scope" is unset',
            "-q",
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_passed(result: subprocess.CompletedProcess[str], tests: int) -> None:
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert re.search(rf"^{tests} passed in ", report, re.MULTILINE), report


def test_the_readme_test_runs_as_shown(tmp_path: Path) -> None:
    snippet = readme_test()
    assert "import pytest" in snippet
    assert "@pytest.mark.asyncio" in snippet

    assert_passed(run_pytest(tmp_path, {"test_readme.py": snippet}), tests=1)


def test_the_tests_of_the_testing_page_run_as_shown(tmp_path: Path) -> None:
    blocks = python_blocks(TESTING)
    tests = [b for b in blocks if TEST_FUNCTION.search(b)]
    (override,) = [b for b in blocks if OVERRIDE_MARK in b]
    assert len(tests) >= 5  # the page's tests: none lost to a changed fence
    files = {f"test_testing_page_{n}.py": block for n, block in enumerate(tests, 1)}
    # The override in a directory of its own, so the other tests keep the plugin's.
    files["override/conftest.py"] = override
    files["override/test_testing_page_override.py"] = OVERRIDE_CHECK + "\n\n" + tests[0]
    count = sum(len(TEST_FUNCTION.findall(text)) for text in files.values())

    assert_passed(run_pytest(tmp_path, files), tests=count)
