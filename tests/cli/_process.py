"""Run `zomro-async` as a real process, its stdout and stderr each a terminal (a pty)
or a pipe, and read what it wrote to each."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Mapping

import attrs

# A bound on a run that should take a second, so that a hang fails the test
# instead of stalling the suite; nothing waits for it to pass.
DEADLINE = 60.0
COMMAND = (sys.executable, "-m", "zomro_async")


def child_env(**more: str) -> dict[str, str]:
    """A clean environment for the child: no credentials, no colour settings."""
    env = {"PATH": os.environ.get("PATH", ""), "TERM": "xterm-256color", "COLUMNS": "120"}
    return {**env, **more}


@attrs.define
class Finished:
    code: int
    stdout: str
    stderr: str


class Process:
    """A running `zomro-async ARGS`; `tty_out`, `tty_err`: which streams are ptys."""

    def __init__(
        self,
        *args: str,
        tty_out: bool = False,
        tty_err: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        ours: dict[str, int] = {}
        theirs: dict[str, int] = {}
        for name, tty in (("stdout", tty_out), ("stderr", tty_err)):
            if tty:
                ours[name], theirs[name] = os.openpty()
            else:
                ours[name], theirs[name] = os.pipe()
        self.proc = subprocess.Popen(  # noqa: S603 - our own command
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=theirs["stdout"],
            stderr=theirs["stderr"],
            env=dict(child_env() if env is None else env),
        )
        for fd in theirs.values():
            os.close(fd)  # the child's ends: a pty reads EOF (EIO) once it exits
        self._selector = selectors.DefaultSelector()
        for name, fd in ours.items():
            self._selector.register(fd, selectors.EVENT_READ, name)
        self._read = {"stdout": b"", "stderr": b""}
        self._deadline = time.monotonic() + DEADLINE

    def text(self, name: str) -> str:
        return self._read[name].decode(errors="replace")

    def read_until(self, done: Callable[[Process], bool]) -> None:
        """Read both streams until `done(self)` (or both are closed); `done` sees
        what was read so far through `text`."""
        while not done(self) and self._selector.get_map():
            if time.monotonic() > self._deadline:
                self.proc.kill()
                raise AssertionError(f"no end in {DEADLINE} s: {self._read}")
            for key, _ in self._selector.select(timeout=1.0):
                try:
                    data = os.read(key.fd, 65536)
                except OSError:  # EIO: the pty's other side is closed
                    data = b""
                if data:
                    self._read[key.data] += data
                else:
                    self._selector.unregister(key.fd)
                    os.close(key.fd)

    def finish(self) -> Finished:
        """Read everything to the end, and the exit status."""
        self.read_until(lambda _: False)
        code = self.proc.wait(timeout=DEADLINE)
        return Finished(code, self.text("stdout"), self.text("stderr"))


def run(*args: str, tty_out: bool = False, tty_err: bool = False) -> Finished:
    """Run `zomro-async ARGS` to its end."""
    return Process(*args, tty_out=tty_out, tty_err=tty_err).finish()
