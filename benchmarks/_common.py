"""Shared by the benchmarks: figures with goals, the result line, an emulator in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from zomro_async.testing import ZomroEmulator

# The runner reads the figures of a benchmark from this line of its output.
RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Figure:
    """One measured figure; `goal` is an upper bound (None: reported, not judged)."""

    name: str
    value: float
    unit: str = ""
    goal: float | None = None
    fmt: str = ".3f"

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "info"
        return "PASS" if self.value <= self.goal else "FAIL"

    def line(self) -> str:
        value = f"{self.value:{self.fmt}}{(' ' + self.unit) if self.unit else ''}"
        goal = (
            "" if self.goal is None else f"  (goal <= {self.goal:g}{self.unit and ' '}{self.unit})"
        )
        return f"{self.name}: {value}{goal}  {self.verdict}"


def emit(benchmark: str, figures: list[Figure]) -> None:
    """Print the figures, then the machine-readable line the runner collects."""
    print()
    for figure in figures:
        print(f"  {figure.line()}")
    payload = {"benchmark": benchmark, "figures": [asdict(f) for f in figures]}
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


def machine() -> str:
    """The interpreter, the machine, and its load average (other work skews timings)."""
    load = (
        ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        if hasattr(os, "getloadavg")
        else ""
    )
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{load}"
    )


def rss_bytes() -> int:
    """This process's resident set size now (psutil, else /proc, else the peak so far)."""
    try:
        import psutil  # optional: only the bench session installs it
    except ImportError:
        pass
    else:
        return int(psutil.Process().memory_info().rss)
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_source() -> str:
    if importlib.util.find_spec("psutil") is not None:
        return "psutil"
    return "/proc/self/statm" if os.path.exists("/proc/self/statm") else "ru_maxrss (peak)"


# -- an emulator in another process -------------------------------------------------


def _serve(conn: multiprocessing.connection.Connection, overrides: dict[str, Any]) -> None:
    asyncio.run(_serve_async(conn, overrides))


async def _serve_async(
    conn: multiprocessing.connection.Connection, overrides: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    async with ZomroEmulator(port=0, **overrides) as emulator:
        conn.send(("ready", emulator.url, emulator.token))
        while True:
            try:
                op, *args = await loop.run_in_executor(None, conn.recv)
            except EOFError:  # the parent is gone
                return
            if op == "add":
                # [(instance_id, {add_instance keywords}), ...] -> ids and when they were seeded
                seeded_at = time.monotonic()
                ids: dict[int, list[int]] = {}
                for instance_id, kwargs in args[0]:
                    emulator.add_instance(instance_id, **kwargs)
                    ids[instance_id] = [int(r["id"]) for r in emulator.snapshots_of(instance_id)]
                conn.send((seeded_at, ids))
            elif op == "calls":
                conn.send(dict(emulator.calls))
            elif op == "stop":
                conn.send("stopped")
                return


class EmulatorProcess:
    """`ZomroEmulator(port=0, **overrides)` served by a child process on the real clock.

    Use as a context manager; `url` and `token` are the emulator's. `add(...)`
    seeds instances and returns their snapshot ids; `calls()` its call counter.
    """

    def __init__(self, **overrides: Any) -> None:
        self._overrides = overrides
        self._conn: multiprocessing.connection.Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self.url = ""
        self.token = ""

    def __enter__(self) -> EmulatorProcess:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self._overrides), daemon=True)
        self._proc.start()
        child.close()
        _, self.url, self.token = self._recv(timeout=60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._proc is not None
        with contextlib.suppress(OSError, EOFError, TimeoutError):
            self.request("stop", timeout=10)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _recv(self, timeout: float) -> Any:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            raise TimeoutError("the emulator process did not answer")
        return self._conn.recv()

    def request(self, *message: Any, timeout: float = 120) -> Any:
        assert self._conn is not None
        self._conn.send(message)
        return self._recv(timeout)

    def add(
        self, instances: list[tuple[int, dict[str, Any]]]
    ) -> tuple[float, dict[int, list[int]]]:
        """Seed instances: `(instance_id, add_instance keywords)` each. Returns the
        child's `time.monotonic()` when seeding began (system-wide on Linux) and
        every instance's snapshot ids.
        """
        seeded_at, ids = self.request("add", instances)
        return seeded_at, ids

    def calls(self) -> dict[str, int]:
        calls: dict[str, int] = self.request("calls")
        return calls
