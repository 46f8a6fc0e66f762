"""Property tests: any document, body, status or argument yields a result or a ZomroError."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aioresponses import CallbackResult, aioresponses
from hypothesis import given, settings
from hypothesis import strategies as st

import zomro_async as z
from zomro_async._core._converter import snapshot_from_row
from zomro_async._core._document import error_from, parse_body, rows, session_id, unwrap
from zomro_async.testing import VirtualClock

URL = "https://api.zomro.com/"
SNAPSHOT_FIELDS = [
    "id", "name", "fleio_status", "createdate", "fleio_id", "image_size", "item_real_status",
    "min_disk", "min_ram", "protected", "architecture", "visibility",
]  # fmt: skip

keys = st.sampled_from(["$", "$type", "$object", "$id", "msg", *SNAPSHOT_FIELDS]) | st.text(
    max_size=8
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
wrapped_rows = st.dictionaries(
    st.sampled_from(SNAPSHOT_FIELDS) | st.text(max_size=10),
    st.text(max_size=40).map(lambda v: {"$": v}) | st.just({}) | json_values,
    max_size=14,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "elem": wrapped_rows | st.lists(wrapped_rows, max_size=4) | json_values,
        "error": json_values,
        "auth": json_values,
        "id": json_values,
        "ok": json_values,
    },
)


def _only_zomro_errors(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except z.ZomroError:
        return None


@given(documents)
def test_document_rules_and_converter_take_any_document(doc: dict[str, Any]) -> None:
    found = _only_zomro_errors(rows, doc)
    for row in found or []:
        assert all(isinstance(v, str) for v in row.values())
        snapshot = _only_zomro_errors(snapshot_from_row, row, 1)
        assert snapshot is None or isinstance(snapshot, z.Snapshot)
    error = error_from(doc)
    assert error is None or isinstance(error, z.ApiError)
    _only_zomro_errors(session_id, doc)


@given(json_values)
def test_unwrap_takes_any_node(node: Any) -> None:
    text = _only_zomro_errors(unwrap, node, "f")
    assert text is None or isinstance(text, str)


@given(
    st.dictionaries(
        st.sampled_from(SNAPSHOT_FIELDS) | st.text(max_size=10), st.text(max_size=30), max_size=14
    )
)
def test_converter_takes_any_row_of_text(row: dict[str, str]) -> None:
    snapshot = _only_zomro_errors(snapshot_from_row, row, 5)
    if snapshot is not None:
        assert snapshot.instance_id == 5
        assert isinstance(snapshot.status, z.SnapshotStatus)


@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_parse_body_takes_any_status_and_bytes(status: int, body: bytes) -> None:
    doc = _only_zomro_errors(parse_body, status, body)
    assert doc is None or isinstance(doc, dict)


def _through_the_client(status: int, body: bytes, call: str) -> None:
    async def run() -> None:
        with aioresponses() as mocked:
            mocked.post(
                URL,
                callback=lambda url, **kw: CallbackResult(status=status, body=body),
                repeat=True,
            )
            async with z.ZomroClient(
                token="fuzz-token",
                retry=z.RetryPolicy(attempts=2, initial_wait=0, jitter=0),
                poll=z.PollPolicy(initial=1, jitter=0),
                conflict_timeout=5,
                request_timeout=5,
                clock=VirtualClock(),
            ) as client:
                snapshots = client.snapshots
                try:
                    if call == "list":
                        assert isinstance(await snapshots.list(1), list)
                    elif call == "create":
                        assert isinstance(await snapshots.create(1, "n"), z.Snapshot)
                    elif call == "delete":
                        await snapshots.delete(1, 2)
                    else:
                        await snapshots.wait_active(1, 2, timeout=10)
                except z.ZomroError as exc:
                    leaked = "fuzz-token" in str(exc)
                    assert not leaked

    asyncio.run(run())


@settings(max_examples=60)
@given(
    st.integers(min_value=200, max_value=599),
    st.binary(max_size=200) | documents.map(lambda d: json.dumps({"doc": d}).encode()),
    st.sampled_from(["list", "create", "delete", "wait"]),
)
def test_any_answer_through_the_client_is_a_result_or_a_zomro_error(
    status: int, body: bytes, call: str
) -> None:
    _through_the_client(status, body, call)


ids = st.one_of(
    st.integers(min_value=-5, max_value=2**64),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
)
timeouts = st.one_of(
    st.floats(allow_nan=True),
    st.integers(min_value=-3, max_value=3),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
)


@settings(max_examples=80)
@given(ids, ids, st.text(max_size=300) | st.none() | st.integers(), timeouts)
def test_any_arguments_are_refused_before_sending_or_accepted(
    instance_id: Any, snapshot_id: Any, name: Any, timeout: Any
) -> None:
    sent: list[dict[str, str]] = []

    async def run() -> None:
        def answer(url: Any, **kw: Any) -> CallbackResult:
            sent.append(dict(kw["data"]))
            return CallbackResult(status=200, payload={"doc": {}})

        with aioresponses() as mocked:
            mocked.post(URL, callback=answer, repeat=True)
            async with z.ZomroClient(token="t0ken", clock=VirtualClock()) as client:
                for call in (
                    lambda: client.snapshots.list(instance_id),
                    lambda: client.snapshots.get(instance_id, snapshot_id),
                    lambda: client.snapshots.create(instance_id, name),
                    lambda: client.snapshots.delete(instance_id, snapshot_id),
                    lambda: client.snapshots.wait_active(instance_id, snapshot_id, timeout=timeout),
                    lambda: client.snapshots.wait_deleted(
                        instance_id, snapshot_id, timeout=timeout
                    ),
                ):
                    before = len(sent)
                    try:
                        await call()
                    except (TypeError, ValueError):
                        assert len(sent) == before  # refused before anything was sent
                    except z.ZomroError:
                        pass  # sent, and the (empty) answer was judged

    asyncio.run(run())
