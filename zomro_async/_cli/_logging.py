"""The SDK's own log on stderr, for `--debug` and `ZOMRO_LOG`: the `zomro_async` loggers only.

The SDK redacts what it logs (every secret field of a request is `***`), so
the log shows which calls were made and how they ended, never a token, a
password or a session id. Other libraries' loggers (aiohttp's) stay quiet.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator, Mapping

import click

LOG_ENV = "ZOMRO_LOG"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# UTC, as the progress lines beside it: `2026-12-02T02:17:00.123Z DEBUG zomro_async...`.
_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"
# Set while the log is held back (`quiet`): in this task, and the tasks it starts.
_QUIET = contextvars.ContextVar("zomro_async_cli_quiet", default=False)


class _StderrHandler(logging.Handler):
    """Writes each record to the stderr of the moment (click's, so a test runner's
    capture too), not to the one there was when the handler was made."""

    def emit(self, record: logging.LogRecord) -> None:
        if _QUIET.get():
            return
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


_HANDLER = _StderrHandler()
_FORMATTER = logging.Formatter(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
_FORMATTER.converter = time.gmtime
_HANDLER.setFormatter(_FORMATTER)


def log_level(debug: bool, env: Mapping[str, str]) -> int | None:
    """The level asked for: DEBUG with `--debug`, else `ZOMRO_LOG`'s (any case), or
    None when neither asks. A `ZOMRO_LOG` that names no level is a usage error."""
    if debug:
        return logging.DEBUG
    value = env.get(LOG_ENV, "").strip()
    if not value:
        return None
    if value.lower() not in LEVELS:
        raise click.UsageError(f"{LOG_ENV} must be one of {', '.join(LEVELS)}, not {value!r}")
    return LEVELS[value.lower()]


def configure(debug: bool, env: Mapping[str, str]) -> None:
    """Log the `zomro_async` loggers on stderr at the level asked for (`log_level`).

    Called once per command; a call undoes what an earlier one set up (in-process
    runs, as the tests make), so that each command logs as it was asked.
    """
    level = log_level(debug, env)
    logger = logging.getLogger("zomro_async")
    if _HANDLER in logger.handlers:
        logger.removeHandler(_HANDLER)
        logger.setLevel(logging.NOTSET)
    if level is None:
        return  # as ever: Python's last resort shows warnings and errors, bare
    logger.setLevel(level)
    logger.addHandler(_HANDLER)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No log of what runs inside: calls that are not the command's own (the
    seeding of `--emulator`'s sandbox), which would read as if it made them."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)
