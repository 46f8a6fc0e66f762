"""The `zomro-async` command line (the `cli` extra): one click group, a module per command.

The console script is `zomro_async.__main__:main`, which tells how to install
the extra when click or rich is missing; importing this needs them.
"""

from __future__ import annotations

import click

from zomro_async import __version__

from ._backups_cmd import backups
from ._demo import demo
from ._emulator_cmd import emulator
from ._images_cmd import images
from ._instances_cmd import instances
from ._restore_cmd import restore
from ._rotate_cmd import rotate
from ._snapshots_cmd import snapshots

EPILOG = """\b
Credentials: ZOMRO_TOKEN, or ZOMRO_USERNAME and ZOMRO_PASSWORD; ZOMRO_API_URL.
Flags (--token, --username, --api-url) override them; a password is never a
flag: it comes from ZOMRO_PASSWORD or a prompt without echo, as restore's new
root password comes from ZOMRO_REBUILD_PASSWORD or a prompt. --emulator runs
any command against an in-process emulator, with no account.

\b
A profile of ~/.config/zomro-async/config.toml (or $ZOMRO_CONFIG), chosen by
--profile or ZOMRO_PROFILE, may give api_url, username, token, password and
output: flags over the environment over the profile. --debug (or ZOMRO_LOG=debug)
shows the SDK's log on stderr, secrets redacted. Shell completion:
eval "$(_ZOMRO_ASYNC_COMPLETE=bash_source zomro-async)" (zsh_source, fish_source).

\b
Exit status: 0 all done; 1 some items failed; 2 usage error;
3 authentication failed; 4 the API could not be reached; 130 interrupted
(Ctrl-C); 143 terminated (SIGTERM)."""


@click.group(
    name="zomro-async",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EPILOG,
)
@click.version_option(__version__, prog_name="zomro-async")
def main() -> None:
    """Zomro Cloud VPS: instances, snapshots, backups (and their schedules), images
    and their copies to other regions, restores, and an emulator of Zomro's API to
    try them on."""


# A new command is a module exposing a click command, added here.
main.add_command(instances)
main.add_command(snapshots)
main.add_command(backups)
main.add_command(images)
main.add_command(restore)
main.add_command(rotate)
main.add_command(demo)
main.add_command(emulator)

__all__ = ["main"]
