"""`SnapshotStatus` matching and flags; `Snapshot` as a frozen value with an optional binding."""

from __future__ import annotations

import datetime
from typing import Any

import attrs
import pytest

from zomro_async._snapshots._domain import Snapshot, SnapshotStatus

S = SnapshotStatus


# --------------------------------------------------------------------------- SnapshotStatus


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Active", S.ACTIVE, id="Active"),
        pytest.param("active", S.ACTIVE, id="active"),
        pytest.param("ACTIVE", S.ACTIVE, id="ACTIVE"),
        pytest.param(" SAVING ", S.SAVING, id="padded-upper-SAVING"),
        pytest.param("Saving\n", S.SAVING, id="trailing-newline"),
        pytest.param("Queued", S.QUEUED, id="Queued"),
        pytest.param("Uploading", S.UPLOADING, id="Uploading"),
        pytest.param("Importing", S.IMPORTING, id="Importing"),
        pytest.param("Deactivated", S.DEACTIVATED, id="Deactivated"),
        pytest.param("Deleting", S.DELETING, id="Deleting"),
        pytest.param("pending delete", S.PENDING_DELETE, id="pending-space-delete"),
        pytest.param("Pending_Delete", S.PENDING_DELETE, id="pending-underscore-delete"),
        pytest.param("pending-delete", S.PENDING_DELETE, id="pending-hyphen-delete"),
        pytest.param("Deleted", S.DELETED, id="Deleted"),
        pytest.param("Killed", S.KILLED, id="Killed"),
        pytest.param("Error", S.ERROR, id="Error"),
        pytest.param("unknown", S.UNKNOWN, id="unknown-itself"),
    ],
)
def test_status_matching(raw: str, expected: SnapshotStatus) -> None:
    assert SnapshotStatus(raw) is expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("Exploded", id="undocumented"),
        pytest.param("Activ", id="prefix"),
        pytest.param("Active!", id="punctuation"),
        pytest.param("UNKNOWN_STATE", id="unknown-like"),
        pytest.param(None, id="none"),
        pytest.param(1, id="int"),
        pytest.param(2.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(["Active"], id="list"),
        pytest.param({"$": "Active"}, id="dict"),
        pytest.param(b"Active", id="bytes"),
    ],
)
def test_status_unknown_never_raises(raw: Any) -> None:
    assert SnapshotStatus(raw) is S.UNKNOWN


@pytest.mark.parametrize(
    ("status", "failed", "in_progress"),
    [
        pytest.param(S.QUEUED, False, True, id="QUEUED"),
        pytest.param(S.SAVING, False, True, id="SAVING"),
        pytest.param(S.UPLOADING, False, True, id="UPLOADING"),
        pytest.param(S.IMPORTING, False, True, id="IMPORTING"),
        pytest.param(S.ACTIVE, False, False, id="ACTIVE"),
        pytest.param(S.DEACTIVATED, False, False, id="DEACTIVATED"),
        pytest.param(S.DELETING, False, False, id="DELETING"),
        pytest.param(S.PENDING_DELETE, False, False, id="PENDING_DELETE"),
        pytest.param(S.DELETED, False, False, id="DELETED"),
        pytest.param(S.KILLED, True, False, id="KILLED"),
        pytest.param(S.ERROR, True, False, id="ERROR"),
        pytest.param(S.UNKNOWN, False, False, id="UNKNOWN"),
    ],
)
def test_status_flags(status: SnapshotStatus, failed: bool, in_progress: bool) -> None:
    assert status.failed is failed
    assert status.in_progress is in_progress


def test_status_flag_table_covers_every_member() -> None:
    covered = {
        S.QUEUED, S.SAVING, S.UPLOADING, S.IMPORTING, S.ACTIVE, S.DEACTIVATED, S.DELETING,
        S.PENDING_DELETE, S.DELETED, S.KILLED, S.ERROR, S.UNKNOWN,
    }  # fmt: skip
    assert covered == set(SnapshotStatus)


# --------------------------------------------------------------------------- Snapshot


def _snapshot(**changes: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "id": 5204214,
        "instance_id": 5203773,
        "name": "MySnapshot",
        "status": S.ACTIVE,
        "status_text": "Active",
        "created": datetime.date(2024, 7, 23),
        "image_size": 3,
        "extra": {"description": "x"},
    }
    return Snapshot(**(fields | changes))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("id", 1, id="id"),
        pytest.param("name", "other", id="name"),
        pytest.param("status", S.KILLED, id="status"),
        pytest.param("extra", {}, id="extra"),
        pytest.param("_client", object(), id="_client"),
    ],
)
def test_snapshot_is_frozen(field: str, value: object) -> None:
    snapshot = _snapshot()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(snapshot, field, value)


class _FakeManager:
    """Records what a bound snapshot asks of its client."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def get(self, instance_id: int, snapshot_id: int) -> Snapshot:
        self.calls.append(("get", instance_id, snapshot_id))
        return _snapshot(name="refreshed")

    async def delete(self, instance_id: int, snapshot_id: int) -> None:
        self.calls.append(("delete", instance_id, snapshot_id))

    async def wait_active(self, instance_id: int, snapshot_id: int, *, timeout: float) -> Snapshot:
        self.calls.append(("wait_active", instance_id, snapshot_id, timeout))
        return _snapshot(name="active")

    async def wait_deleted(self, instance_id: int, snapshot_id: int, *, timeout: float) -> None:
        self.calls.append(("wait_deleted", instance_id, snapshot_id, timeout))


BINDINGS = [
    pytest.param(object(), id="object"),
    pytest.param("a string", id="string"),
    pytest.param(_FakeManager(), id="fake-manager"),
    pytest.param(0, id="falsy-int"),
]


@pytest.mark.parametrize("client", BINDINGS)
def test_binding_takes_no_part_in_equality(client: object) -> None:
    snapshot = _snapshot()
    bound = snapshot.bind(client)  # type: ignore[arg-type]
    assert bound == snapshot
    assert (bound != snapshot) is False
    assert bound is not snapshot
    assert bound._client is client
    assert snapshot._client is None


@pytest.mark.parametrize("client", BINDINGS)
def test_binding_takes_no_part_in_repr(client: object) -> None:
    snapshot = _snapshot()
    bound = snapshot.bind(client)  # type: ignore[arg-type]
    assert repr(bound) == repr(snapshot)
    assert "client" not in repr(bound)


def test_differently_bound_snapshots_are_equal() -> None:
    snapshot = _snapshot()
    assert snapshot.bind(object()) == snapshot.bind(_FakeManager())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("id", 1, id="id"),
        pytest.param("instance_id", 2, id="instance_id"),
        pytest.param("status", S.SAVING, id="status"),
        pytest.param("image_size", None, id="image_size"),
        pytest.param("extra", {}, id="extra"),
    ],
)
def test_data_fields_take_part_in_equality(field: str, value: object) -> None:
    assert _snapshot() != _snapshot(**{field: value})


def test_client_alias_in_constructor() -> None:
    client = object()
    snapshot = Snapshot(id=1, instance_id=2, client=client)  # type: ignore[arg-type]
    assert snapshot._client is client
    assert snapshot == Snapshot(id=1, instance_id=2)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        pytest.param("refresh", (), id="refresh"),
        pytest.param("wait_active", (), id="wait_active"),
        pytest.param("delete", (), id="delete"),
        pytest.param("wait_deleted", (), id="wait_deleted"),
    ],
)
async def test_unbound_snapshot_methods_raise_runtime_error(method: str, args: tuple[()]) -> None:
    with pytest.raises(RuntimeError, match="not bound"):
        await getattr(_snapshot(), method)(*args)


@pytest.mark.parametrize(
    ("method", "kwargs", "expected_call"),
    [
        pytest.param("refresh", {}, ("get", 5203773, 5204214), id="refresh"),
        pytest.param("delete", {}, ("delete", 5203773, 5204214), id="delete"),
        pytest.param(
            "wait_active", {}, ("wait_active", 5203773, 5204214, 3600.0), id="wait_active"
        ),
        pytest.param(
            "wait_active",
            {"timeout": 5.0},
            ("wait_active", 5203773, 5204214, 5.0),
            id="wait_active-timeout",
        ),
        pytest.param(
            "wait_deleted", {}, ("wait_deleted", 5203773, 5204214, 600.0), id="wait_deleted"
        ),
    ],
)
async def test_bound_snapshot_delegates_to_its_client(
    method: str, kwargs: dict[str, float], expected_call: tuple[Any, ...]
) -> None:
    manager = _FakeManager()
    bound = _snapshot().bind(manager)  # type: ignore[arg-type]
    await getattr(bound, method)(**kwargs)
    assert manager.calls == [expected_call]


async def test_refresh_returns_what_the_client_returns() -> None:
    bound = _snapshot().bind(_FakeManager())  # type: ignore[arg-type]
    refreshed = await bound.refresh()
    assert refreshed.name == "refreshed"
