"""Client overhead: CPU per `snapshots.list()` against bare aiohttp posting the same two forms.

`client.snapshots.list(instance)` sends two posts: the clear of the stored list
filter (`instances.snapshots.filter`, every field empty, `sok=ok`), then the
listing (`instances.snapshots`). The bare loop posts the same two forms over
one aiohttp session and parses each answer with the JSON library the SDK reads
with in that configuration (`json.loads` or `orjson.loads` as they are; the
SDK's own reader over it, strictness checks and all, counts as the SDK's), so
the ratio measures the client, not the protocol. The server checks that both
loops post the same forms, two a call.

The server is a child process (`_common.RowsProcess`) that lists generated
rows in BILLmanager's shape, with every field of a real row:

- fresh rows: every row new on every call (its id, name, creation date and
  `fleio_id`; status, size and `protected` varying), so that no cache in the
  client can help: 20 rows a call, and 100 and 500 for the per-row slope,
  (CPU at 500 rows - CPU at 100 rows) / 400;
- repeated rows: the same 20 rows on every call, as polling sees them.

This process's CPU (`time.process_time()`) is the client's alone. Every round
measures every listing, with the stdlib's `json` and again with `orjson` when
it is installed (the `speedups` extra); the two loops swap order from one
round to the next (SDK first, then bare first, ...). The figures are medians
over the rounds.

    python benchmarks/overhead.py [--calls 400] [--rounds 7] [--profile] [--layers]

`--calls` is K for 20 rows; a listing of more rows makes K x 20 / rows calls
(at least 20). `--profile` adds a cProfile of K more SDK calls (fresh rows, 20
a call, the SDK's own parser); `--layers` times the SDK's layers one on top of
the other, at 20 rows fresh and repeated, with each parser (private internals:
a diagnosis, not an API; K calls per layer and round).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from _common import Figure, RowsProcess, emit, machine

from zomro_async import ZomroClient
from zomro_async._core import _document
from zomro_async._core._inferred import SNAPSHOTS_FILTER
from zomro_async._core._session import filters_cleared_anew

LIST_FUNC = "instances.snapshots"
WARMUP = 100  # calls of each loop at 20 rows (proportionally fewer for more rows)
MIN_CALLS = 20
SIDES = ("SDK", "bare")
GOALS = {"fresh": 1.4, "repeated": 1.1, "slope": 1.6}

Loads = Callable[[bytes], Any]
Loop = Callable[[int], Awaitable[None]]
_SWITCH = ("_loads", "JSON_PARSER")  # what `use_parser` sets in `_document`
_READERS = {"json": "_loads_stdlib", "orjson": "_loads_orjson"}  # the SDK's, in `_document`


@dataclass(frozen=True)
class Case:
    """One listing the server serves: `rows` rows a call, new on every call when `fresh`."""

    instance: int
    rows: int
    fresh: bool

    @property
    def label(self) -> str:
        return f"{'fresh' if self.fresh else 'repeated'} x{self.rows}"

    def calls(self, k20: int) -> int:
        """Calls of this listing worth about as much work as `k20` calls of 20 rows."""
        return max(MIN_CALLS, k20 * 20 // self.rows)


FRESH_20 = Case(5_203_020, 20, fresh=True)
REPEATED_20 = Case(5_204_020, 20, fresh=False)
FRESH_100 = Case(5_203_100, 100, fresh=True)
FRESH_500 = Case(5_203_500, 500, fresh=True)
CASES = (FRESH_20, REPEATED_20, FRESH_100, FRESH_500)


# -- the JSON parser: the SDK's and the bare loop's, switched together ----------------


@dataclass(frozen=True)
class Parser:
    """One JSON library: the bare loop calls it as it is; the SDK reads through its
    own reader over the same library (whose strictness checks count as the SDK's)."""

    name: str
    bare: Loads
    sdk: Loads


def available_parsers() -> dict[str, Parser]:
    """The parsers to measure: the stdlib's, and orjson when it is installed and the
    SDK can read with it (`_document._loads_orjson`, named by `JSON_PARSER`)."""
    found = {"json": Parser("json", json.loads, _sdk_reader("json") or json.loads)}
    try:
        import orjson  # the `speedups` extra
    except ImportError:
        return found
    reader = _sdk_reader("orjson")
    if reader is None:
        print("note: orjson is installed but the SDK cannot read with it: json only")
    else:
        found["orjson"] = Parser("orjson", orjson.loads, reader)
    return found


def _sdk_reader(name: str) -> Loads | None:
    """The SDK's reader over library `name`: `_document._loads_stdlib` or
    `_loads_orjson`; failing that, `_document._loads` when `JSON_PARSER` names it."""
    reader: Loads | None = getattr(_document, _READERS.get(name, f"_loads_{name}"), None)
    if reader is None and getattr(_document, "JSON_PARSER", "json") == name:
        reader = getattr(_document, "_loads", None)
    return reader


def sdk_parser() -> str:
    """The parser the SDK chose for itself (the stdlib's before it could choose)."""
    return str(getattr(_document, "JSON_PARSER", "json"))


@contextlib.contextmanager
def sdk_parser_kept() -> Iterator[None]:
    """The SDK's own parser back afterwards, whatever `use_parser` did inside."""
    saved = {name: getattr(_document, name) for name in _SWITCH if hasattr(_document, name)}
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(_document, name, value)


def use_parser(parser: Parser, sdk: Loads | None = None) -> None:
    """Make the SDK read every answer with `parser` (private internals): the one switch."""
    if hasattr(_document, "_loads"):
        _document._loads = sdk or parser.sdk
        _document.JSON_PARSER = parser.name
    elif parser.name != "json":
        raise RuntimeError(f"the SDK has no parser switch (_document._loads) for {parser.name}")


async def check_parser(client: ZomroClient, parser: Parser) -> None:
    """One `snapshots.list()` reads both its answers with `parser`'s reader, no other."""
    if not hasattr(_document, "_loads"):
        return
    read = 0

    def counting(body: bytes) -> Any:
        nonlocal read
        read += 1
        return parser.sdk(body)

    use_parser(parser, counting)
    try:
        await client.snapshots.list(FRESH_20.instance)
    finally:
        use_parser(parser)
    if read != 2:
        raise RuntimeError(f"the SDK read {read} answers of 2 with {parser.name}: not switched")


# -- the two loops ----------------------------------------------------------------------


def forms(token: str, case: Case) -> tuple[dict[str, str], dict[str, str]]:
    """The two forms a `snapshots.list()` posts: the filter clear, then the listing."""
    base = {"out": "json", "lang": "en", "auth": token}
    clear = {"func": SNAPSHOTS_FILTER.func, **base, **SNAPSHOTS_FILTER.clearing_form()}
    listing = {"func": LIST_FUNC, **base, "elid": str(case.instance)}
    return clear, listing


def make_loops(
    server: RowsProcess,
    client: ZomroClient,
    http: aiohttp.ClientSession,
    case: Case,
    loads: Loads,
) -> dict[str, Loop]:
    clear, listing = forms(server.token, case)
    url, instance, rows = server.url, case.instance, case.rows

    async def sdk(k: int) -> None:
        for _ in range(k):
            snapshots = await client.snapshots.list(instance)
            assert len(snapshots) == rows

    async def bare(k: int) -> None:
        for _ in range(k):
            async with http.post(url, data=clear) as response:
                loads(await response.read())
            async with http.post(url, data=listing) as response:
                doc = loads(await response.read())
            assert len(doc["doc"]["elem"]) == rows

    return {"SDK": sdk, "bare": bare}


async def timed(loop: Loop, k: int) -> tuple[float, float]:
    """CPU and wall seconds per call over `k` sequential calls."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await loop(k)
    return (time.process_time() - cpu) / k, (time.perf_counter() - wall) / k


async def warm_up_and_check(
    server: RowsProcess,
    client: ZomroClient,
    loops: dict[tuple[str, Case], dict[str, Loop]],
    parsers: dict[str, Parser],
) -> None:
    """Warm every loop up, and check what the comparison rests on: both loops post
    the same two forms a call, the SDK parses with the parser under test, fresh
    rows are new on every call and repeated ones are not.
    """
    firsts = {c: {s.id for s in await client.snapshots.list(c.instance)} for c in CASES}
    seconds = {c: {s.id for s in await client.snapshots.list(c.instance)} for c in CASES}
    for case in CASES:
        same = firsts[case] & seconds[case]
        if (same != set()) if case.fresh else (same != firsts[case]):
            raise RuntimeError(f"{case.label}: {len(same)} of {case.rows} rows came back")
    server.forms()  # from here on
    for name, parser in parsers.items():
        use_parser(parser)
        await check_parser(client, parser)
        for case in CASES:
            k = max(MIN_CALLS // 2, WARMUP * 20 // case.rows)
            for side, loop in loops[name, case].items():
                before = server.calls()
                await loop(k)
                after = server.calls()
                posted = {f: n - before.get(f, 0) for f, n in after.items() if n != before.get(f)}
                if posted != {SNAPSHOTS_FILTER.func: k, LIST_FUNC: k}:
                    raise RuntimeError(f"{side} {case.label}: {k} calls posted {posted}")
    expected = sorted(
        {
            tuple(sorted((k, v) for k, v in form.items() if k != "auth"))
            for c in CASES
            for form in forms("", c)
        }
    )
    seen = server.forms()
    if seen != expected:
        raise RuntimeError(f"the loops posted {seen}, not the {len(expected)} forms expected")


# -- the measurement ---------------------------------------------------------------------

Samples = dict[tuple[str, Case, str], list[float]]


async def measure(
    server: RowsProcess, k20: int, rounds: int, parsers: dict[str, Parser], profile: bool
) -> Samples:
    """Every (parser, listing, loop) `rounds` times; the loops swap order each round."""
    cpu: Samples = {(p, c, s): [] for p in parsers for c in CASES for s in SIDES}
    async with (
        ZomroClient(token=server.token, base_url=server.url) as client,
        aiohttp.ClientSession() as http,
    ):
        loops = {
            (name, case): make_loops(server, client, http, case, parser.bare)
            for name, parser in parsers.items()
            for case in CASES
        }
        with sdk_parser_kept():
            await warm_up_and_check(server, client, loops, parsers)
            for r in range(rounds):
                order = SIDES if r % 2 == 0 else SIDES[::-1]
                for name, parser in parsers.items():
                    use_parser(parser)
                    for case in CASES:
                        shown = []
                        for side in order:
                            per_call, wall = await timed(loops[name, case][side], case.calls(k20))
                            cpu[name, case, side].append(per_call)
                            shown.append(
                                f"{side:<4} {per_call * 1e6:7.1f} us CPU "
                                f"({wall * 1e6:7.1f} us wall)"
                            )
                        print(
                            f"round {r + 1} [{name}] {case.label:<12} " + ", ".join(shown),
                            flush=True,
                        )
        if profile:
            own = sdk_parser()
            profiler = cProfile.Profile()
            profiler.enable()
            await loops[own if own in parsers else "json", FRESH_20]["SDK"](k20)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
            print(f"\ncProfile of {k20} SDK calls, {FRESH_20.label}, [{own}]:\n{out.getvalue()}")
    return cpu


# -- layer by layer -----------------------------------------------------------------------


def make_layers(
    server: RowsProcess,
    client: ZomroClient,
    http: aiohttp.ClientSession,
    case: Case,
    loads: Loads,
) -> dict[str, Loop]:
    """The path of `snapshots.list()` cut at each layer, every loop adding one layer;
    each sends both posts (the filter clear, the listing)."""
    clear, listing = forms(server.token, case)
    api, transport, snapshots = client._api, client._transport, client.snapshots
    token, instance = server.token, case.instance
    calls = [
        (SNAPSHOTS_FILTER.func, SNAPSHOTS_FILTER.clearing_form()),
        (LIST_FUNC, {"elid": str(instance)}),
    ]

    async def transport_post(k: int) -> None:
        for _ in range(k):
            loads((await transport.post(clear)).body)
            loads((await transport.post(listing)).body)

    async def session_send(k: int) -> None:
        for _ in range(k):
            for func, fields in calls:
                await api._send(func, {**fields, "auth": token}, api._epoch)

    async def session_call(k: int) -> None:
        for _ in range(k):
            for func, fields in calls:
                await api.call(func, fields)

    async def list_rows(k: int) -> None:
        with filters_cleared_anew():
            for _ in range(k):
                await api.list_rows(LIST_FUNC, calls[1][1], stored_filter=SNAPSHOTS_FILTER)

    async def models(k: int) -> None:
        with filters_cleared_anew():
            for _ in range(k):
                await snapshots._listed(instance)

    n = case.rows
    loops = make_loops(server, client, http, case, loads)
    return {
        "bare aiohttp: 2 POSTs, parse each answer": loops["bare"],
        "+ Transport.post (attrs answer, capped read)": transport_post,
        "+ ApiSession._send (form, budget, parse, errors, log)": session_send,
        "+ ApiSession.call (retry wrapper, auth)": session_call,
        f"+ ApiSession.list_rows (clear, pages, unwrap {n} rows)": list_rows,
        f"+ instance_image_from_row ({n} bound Snapshots)": models,
        "+ check_id = snapshots.list()": loops["SDK"],
    }


async def layers(server: RowsProcess, k: int, rounds: int, parsers: dict[str, Parser]) -> None:
    cases = (FRESH_20, REPEATED_20)
    async with (
        ZomroClient(token=server.token, base_url=server.url) as client,
        aiohttp.ClientSession() as http,
    ):
        with sdk_parser_kept():
            for name, parser in parsers.items():
                use_parser(parser)
                cut = {case: make_layers(server, client, http, case, parser.bare) for case in cases}
                for case_layers in cut.values():
                    for loop in case_layers.values():
                        await loop(WARMUP)
                names = list(cut[FRESH_20])
                cpu = {(case, layer): [] for case in cases for layer in names}
                for r in range(rounds):
                    for layer in names if r % 2 == 0 else names[::-1]:
                        for case in cases:
                            cpu[case, layer].append((await timed(cut[case][layer], k))[0])
                print(f"\nlayers [{name}], median CPU per call over {rounds} rounds of {k} calls:")
                print(f"  {'':<56} " + "  ".join(f"{c.label:>22}" for c in cases))
                previous = dict.fromkeys(cases, 0.0)
                for layer in names:
                    cells = []
                    for case in cases:
                        median = statistics.median(cpu[case, layer]) * 1e6
                        cells.append(f"{median:7.1f} us ({median - previous[case]:+7.1f})")
                        previous[case] = median
                    print(f"  {layer:<56} " + "  ".join(f"{c:>22}" for c in cells), flush=True)


# -- the figures --------------------------------------------------------------------------


def summarise(cpu: Samples, parsers: dict[str, Parser], rounds: int) -> list[Figure]:
    """The medians as a table, and as figures: each parser's three ratios first,
    fresh and repeated rows side by side, then what they are made of."""

    def median(name: str, case: Case, side: str) -> float:
        return statistics.median(cpu[name, case, side])

    print(f"\nmedian CPU per call over {rounds} rounds (this process; bare = the same 2 posts):")
    goals: list[Figure] = []
    info: list[Figure] = []
    for name in parsers:
        tag = f"[{name}]"
        for case in CASES:
            sdk, bare = median(name, case, "SDK"), median(name, case, "bare")
            print(
                f"  {tag:<9} {case.label:<12} SDK {sdk * 1e6:8.1f} us   bare {bare * 1e6:8.1f} us"
                f"   SDK / bare {sdk / bare:5.2f}"
            )
        slope = {
            side: (median(name, FRESH_500, side) - median(name, FRESH_100, side))
            / (FRESH_500.rows - FRESH_100.rows)
            for side in SIDES
        }
        print(
            f"  {tag:<9} per-row slope, fresh x100 -> x500: SDK {slope['SDK'] * 1e6:.2f} us/row, "
            f"bare {slope['bare'] * 1e6:.2f} us/row, SDK / bare {slope['SDK'] / slope['bare']:.2f}"
        )
        fresh = {side: median(name, FRESH_20, side) for side in SIDES}
        repeated = {side: median(name, REPEATED_20, side) for side in SIDES}
        goals += [
            Figure(
                f"SDK / bare CPU per call, fresh rows x20 {tag}",
                fresh["SDK"] / fresh["bare"],
                goal=GOALS["fresh"],
                fmt=".2f",
            ),
            Figure(
                f"SDK / bare CPU per call, repeated rows x20 {tag}",
                repeated["SDK"] / repeated["bare"],
                goal=GOALS["repeated"],
                fmt=".2f",
            ),
            Figure(
                f"SDK / bare CPU per row, fresh x100->x500 {tag}",
                slope["SDK"] / slope["bare"],
                goal=GOALS["slope"],
                fmt=".2f",
            ),
        ]
        for side in SIDES:
            info += [
                Figure(
                    f"{side} CPU per call, fresh rows x20 {tag}", fresh[side] * 1e6, "us", fmt=".1f"
                ),
                Figure(
                    f"{side} CPU per call, repeated rows x20 {tag}",
                    repeated[side] * 1e6,
                    "us",
                    fmt=".1f",
                ),
                Figure(
                    f"{side} CPU per row, fresh x100->x500 {tag}",
                    slope[side] * 1e6,
                    "us",
                    fmt=".2f",
                ),
            ]
    return goals + info


def _qualname(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=400, help="K calls per loop and round, at 20 rows"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile K more SDK calls")
    parser.add_argument("--layers", action="store_true", help="time the SDK layer by layer")
    args = parser.parse_args(argv)

    parsers = available_parsers()
    own = sdk_parser()
    print(f"== client overhead ({machine()})")
    print(
        "setup: a row server in a child process on the real clock lists generated "
        "instances.snapshots rows (every field of a real row): fresh = every row new on "
        "every call; repeated = the same rows every call (polling)"
    )
    print(
        "SDK loop: client.snapshots.list(instance), token client: 2 posts a call, the "
        "stored-filter clear then the listing; rows read into bound Snapshot models"
    )
    print(
        "bare loop: aiohttp posts the same 2 forms over one ClientSession and parses each "
        "answer with the JSON library the SDK reads with in that configuration: the ratio "
        "measures the client, not the protocol (the server checks both post the same forms, "
        "2 a call)"
    )
    print(
        "parsers: "
        + "; ".join(
            f"[{p.name}] bare {_qualname(p.bare)}, SDK {_qualname(p.sdk)}" for p in parsers.values()
        )
        + f" (the SDK's own choice: {own}; its reader's strictness checks count as the SDK's)"
    )
    print(
        f"K: {', '.join(f'{c.calls(args.calls)} calls at {c.label}' for c in CASES)} per loop "
        f"and round; {args.rounds} rounds, the loops' order swapped each round, after "
        f"{WARMUP} warm-up calls each (at 20 rows); CPU = time.process_time() of this process"
    )
    with RowsProcess() as server:
        for case in CASES:
            server.add(case.instance, case.rows, fresh=case.fresh)
        print(f"row server: pid {server.pid} at {server.url}", flush=True)
        cpu = asyncio.run(measure(server, args.calls, args.rounds, parsers, args.profile))
        if args.layers:
            asyncio.run(layers(server, args.calls, args.rounds, parsers))
        print(f"the server made {server.made()} rows")
    figures = summarise(cpu, parsers, args.rounds)
    emit("overhead", figures)
    return figures


if __name__ == "__main__":
    main()
