"""Run every benchmark, each in its own process, and print their figures against the goals.

    python benchmarks/run.py [polling instance_waits copy_waits overhead scale]

Every ratio is measured within one run (the SDK against bare aiohttp in the same
process, the calls against the schedule of one waiter in the same clock), so
the figures compare across machines better than raw times. A missed goal is
reported as FAIL and does not change the exit status; a benchmark that crashes
(or prints no figures) does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULT_PREFIX, Figure, machine

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("polling", "instance_waits", "copy_waits", "overhead", "scale")


def run(name: str) -> tuple[list[Figure] | None, float]:
    """Run one benchmark script, echoing its output; its figures, or None if it crashed."""
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own script, with this interpreter
        [sys.executable, str(HERE / f"{name}.py")],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    figures: list[Figure] | None = None
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            payload = json.loads(line[len(RESULT_PREFIX) :])
            figures = [Figure(**f) for f in payload["figures"]]
        else:
            print(line, end="", flush=True)
    code = proc.wait()
    elapsed = time.perf_counter() - started
    if code != 0:
        print(f"!! {name} exited with status {code}", flush=True)
        return None, elapsed
    if figures is None:
        print(f"!! {name} printed no figures", flush=True)
    return figures, elapsed


def main(argv: list[str] | None = None) -> int:
    names = argv if argv is not None else sys.argv[1:]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; pick from {BENCHMARKS}")
        return 2
    started = time.perf_counter()
    results: dict[str, tuple[list[Figure] | None, float]] = {}
    for name in names or BENCHMARKS:
        results[name] = run(name)
        print(flush=True)

    print(f"== summary ({machine()}, {time.perf_counter() - started:.0f} s in all)")
    crashed = []
    width = max((len(f.name) for figures, _ in results.values() for f in figures or []), default=20)
    named = max(len(name) for name in results)
    for name, (figures, elapsed) in results.items():
        if figures is None:
            crashed.append(name)
            print(f"{name:<{named}} CRASHED after {elapsed:.0f} s")
            continue
        for figure in figures:
            value = f"{figure.value:{figure.fmt}} {figure.unit}".rstrip()
            goal = "" if figure.goal is None else f"<= {figure.goal:g} {figure.unit}".rstrip()
            row = f"{name:<{named}} {figure.name:<{width}}  {value:>11}  {goal:<12}"
            print(f"{row} {figure.verdict}")
    failed = [
        f"{name}: {f.name}"
        for name, (figures, _) in results.items()
        for f in figures or []
        if f.verdict == "FAIL"
    ]
    verdict = "all goals met" if not failed else f"{len(failed)} goal(s) missed"
    print(f"\n{verdict}" + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
