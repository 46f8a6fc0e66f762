"""The `zomro-async` command line (the `cli` extra): one click group, a module per command."""

from __future__ import annotations

try:
    import click
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the zomro-async command needs the cli extra: pip install 'zomro-async[cli]'"
    ) from exc

from zomro_async import __version__

from ._demo import demo
from ._emulator_cmd import emulator


@click.group(name="zomro-async", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zomro-async")
def main() -> None:
    """Snapshots of Zomro Cloud VPS instances, and an emulator of Zomro's API to try them on."""


# A new command is a module exposing a click command, added here.
main.add_command(demo)
main.add_command(emulator)

__all__ = ["main"]
