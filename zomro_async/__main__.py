"""The `zomro-async` command (and `python -m zomro_async`): the CLI, or how to install it.

The CLI needs the `cli` extra (click, rich). Without it the command prints
one line saying how to install it and exits with status 1, not a traceback.
"""

from __future__ import annotations

import sys

CLI_EXTRA = frozenset({"click", "rich"})
INSTALL_HINT = "pip install 'zomro-async[cli]' (in a checkout: pip install -e '.[cli]')"


def main() -> None:
    try:
        from zomro_async._cli import main as cli
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in CLI_EXTRA:
            raise  # a broken install of something else: its traceback tells what
        sys.stderr.write(
            f"zomro-async: the command line needs the cli extra ({missing} is missing): "
            f"{INSTALL_HINT}\n"
        )
        sys.exit(1)
    cli()


if __name__ == "__main__":
    main()
