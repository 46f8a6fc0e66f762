"""The console script: the CLI, or one line on how to install it; and shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ._support import invoke

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["zomro-async"]


def script(*args: str, hide: str | None = None) -> str:
    """Python that calls the console script's target (from pyproject.toml) as pip's
    wrapper does, with `args`, and with the module `hide` made unimportable."""
    module, _, function = SCRIPT.partition(":")
    code = (
        "import sys\n"
        + (f"sys.modules[{hide!r}] = None\n" if hide else "")
        + f"sys.argv = ['zomro-async', *{list(args)!r}]\n"
        + f"from {module} import {function}\n"
        + f"{function}()\n"
    )
    return code


def run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("missing", ["click", "rich"])
def test_without_the_cli_extra_one_line_says_how_to_install_it(missing: str) -> None:
    done = run(script("instances", "list", hide=missing))

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"zomro-async: the command line needs the cli extra ({missing} is missing): "
        "pip install 'zomro-async[cli]' (in a checkout: pip install -e '.[cli]')\n"
    )


def test_another_missing_module_is_not_hidden() -> None:
    done = run(script("--version", hide="zomro_async.testing"))  # which the CLI imports

    assert done.returncode == 1
    assert "Traceback" in done.stderr  # a broken install, not the extra: told as is
    assert "cli extra" not in done.stderr


def test_with_the_extra_the_script_is_the_cli() -> None:
    done = run(script("--version"))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("zomro-async, version ")


def test_python_dash_m_runs_it_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zomro_async", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "instances" in done.stdout


# -- shell completion, click's own -------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _zomro_async_completion zomro-async"),
        ("zsh", "#compdef zomro-async"),
        ("fish", "complete --no-files --command zomro-async"),
    ],
)
def test_the_completion_variable_prints_the_shells_script(shell: str, marker: str) -> None:
    result = invoke(env={"_ZOMRO_ASYNC_COMPLETE": f"{shell}_source"})

    assert result.exit_code == 0, result.output
    assert marker in result.stdout
    assert "_ZOMRO_ASYNC_COMPLETE" in result.stdout  # the script asks the command back


def test_the_console_script_prints_the_completion_script() -> None:
    done = run(script(), env={"_ZOMRO_ASYNC_COMPLETE": "zsh_source"})

    assert done.returncode == 0, done.stderr
    assert "#compdef zomro-async" in done.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("zomro-async sn", {"snapshots"}),
        ("zomro-async backups schedule ", {"add", "list", "remove"}),
        ("zomro-async instances wait 5203773 --status sto", {"stopped", "stopping"}),
    ],
)
def test_completion_answers_the_words_typed(words: str, expected: set[str]) -> None:
    env = {
        "_ZOMRO_ASYNC_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = invoke(env=env)

    assert result.exit_code == 0, result.output
    assert {line.partition(",")[2] for line in result.stdout.splitlines()} == expected
