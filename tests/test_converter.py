"""`snapshot_from_row`: an unwrapped `instances.snapshots` row into a typed `Snapshot`."""

from __future__ import annotations

import datetime
import uuid

import attrs
import pytest

from tests.conftest import PAGE_ROW
from zomro_async._core._converter import snapshot_from_row
from zomro_async._core._document import rows
from zomro_async._exceptions import ResponseError
from zomro_async._snapshots._domain import Snapshot, SnapshotStatus

INSTANCE = 5203773

EXPECTED_FIELDS = {
    "id": 5204214,
    "instance_id": INSTANCE,
    "name": "MySnapshot",
    "status": SnapshotStatus.ACTIVE,
    "status_text": "Active",
    "created": datetime.date(2024, 7, 23),
    "architecture": "x86_64",
    "disk_format": "qcow2",
    "fleio_id": uuid.UUID("afd72725-81aa-43ad-984c-a3f3a05b4b84"),
    "hypervisor_type": "any_hypervisor",
    "image_size": 3,
    "item_real_status": 2,
    "min_disk": 20,
    "min_ram": 0,
    "os_distro": "Ubuntu",
    "os_version": "22.04 x64",
    "protected": False,
    "region": "Netherlands-2",
    "visibility": "private",
    "extra": {},
}


def test_expected_fields_cover_every_public_model_field() -> None:
    public = {a.name for a in attrs.fields(Snapshot) if not a.name.startswith("_")}
    assert public == set(EXPECTED_FIELDS)


@pytest.mark.parametrize(
    ("field", "expected"), list(EXPECTED_FIELDS.items()), ids=list(EXPECTED_FIELDS)
)
def test_page_sample_row_field(field: str, expected: object) -> None:
    snapshot = snapshot_from_row(PAGE_ROW, INSTANCE)
    value = getattr(snapshot, field)
    assert value == expected
    # Exact types: 3 must not be "3", and False must not be "off" or 0.
    assert type(value) is type(expected)


def test_page_sample_row_whole_snapshot() -> None:
    assert snapshot_from_row(PAGE_ROW, INSTANCE) == Snapshot(**EXPECTED_FIELDS)


def test_page_sample_row_is_unbound() -> None:
    assert snapshot_from_row(PAGE_ROW, INSTANCE)._client is None


def test_row_is_not_mutated() -> None:
    row = dict(PAGE_ROW, description="kept")
    before = dict(row)
    snapshot_from_row(row, INSTANCE)
    assert row == before


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        pytest.param({"protected": "on"}, "protected", True, id="protected-on"),
        pytest.param({"protected": "off"}, "protected", False, id="protected-off"),
        pytest.param({"protected": " ON "}, "protected", True, id="protected-padded-upper"),
        pytest.param({"fleio_status": "Saving"}, "status", SnapshotStatus.SAVING, id="saving"),
        pytest.param({"fleio_status": " saving "}, "status_text", " saving ", id="status-text-raw"),
        pytest.param(
            {"fleio_status": "Exploded"}, "status", SnapshotStatus.UNKNOWN, id="status-unknown"
        ),
        pytest.param(
            {"fleio_status": "Exploded"}, "status_text", "Exploded", id="status-text-unknown"
        ),
        pytest.param(
            {"createdate": "2024-07-23 10:11:12"},
            "created",
            datetime.date(2024, 7, 23),
            id="createdate-with-time",
        ),
        pytest.param(
            {"fleio_id": "AFD72725-81AA-43AD-984C-A3F3A05B4B84"},
            "fleio_id",
            uuid.UUID("afd72725-81aa-43ad-984c-a3f3a05b4b84"),
            id="uuid-upper-case",
        ),
        pytest.param({"image_size": " 15 "}, "image_size", 15, id="int-padded"),
        pytest.param({"visibility": "Private"}, "visibility", "Private", id="visibility-raw"),
    ],
)
def test_field_variants(changes: dict[str, str], field: str, expected: object) -> None:
    snapshot = snapshot_from_row(PAGE_ROW | changes, INSTANCE)
    assert getattr(snapshot, field) == expected


def test_saving_row_without_image_size() -> None:
    row = {k: v for k, v in PAGE_ROW.items() if k != "image_size"} | {"fleio_status": "Saving"}
    snapshot = snapshot_from_row(row, INSTANCE)
    assert snapshot.image_size is None
    assert snapshot.status is SnapshotStatus.SAVING
    assert snapshot.status.in_progress
    assert snapshot.status_text == "Saving"


OPTIONAL_FIELDS = {
    "createdate": "created",
    "architecture": "architecture",
    "disk_format": "disk_format",
    "fleio_id": "fleio_id",
    "hypervisor_type": "hypervisor_type",
    "image_size": "image_size",
    "item_real_status": "item_real_status",
    "min_disk": "min_disk",
    "min_ram": "min_ram",
    "os_distro": "os_distro",
    "os_version": "os_version",
    "region": "region",
    "visibility": "visibility",
}


@pytest.mark.parametrize(
    ("row_key", "model_field"), OPTIONAL_FIELDS.items(), ids=list(OPTIONAL_FIELDS)
)
def test_missing_optional_field_is_none(row_key: str, model_field: str) -> None:
    row = {k: v for k, v in PAGE_ROW.items() if k != row_key}
    snapshot = snapshot_from_row(row, INSTANCE)
    assert getattr(snapshot, model_field) is None
    assert row_key not in snapshot.extra


def test_row_with_only_an_id_takes_the_defaults() -> None:
    snapshot = snapshot_from_row({"id": "7"}, INSTANCE)
    assert snapshot == Snapshot(id=7, instance_id=INSTANCE)
    assert snapshot.name == ""
    assert snapshot.status is SnapshotStatus.UNKNOWN
    assert snapshot.status_text == ""
    assert snapshot.protected is False
    assert snapshot.extra == {}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({"description": "nightly"}, {"description": "nightly"}, id="one"),
        pytest.param({"zone": "nl", "cost": "0.10"}, {"zone": "nl", "cost": "0.10"}, id="two"),
        pytest.param({}, {}, id="none"),
    ],
)
def test_unknown_fields_go_to_extra(extra: dict[str, str], expected: dict[str, str]) -> None:
    snapshot = snapshot_from_row(PAGE_ROW | extra, INSTANCE)
    assert snapshot.extra == expected
    # and the known fields are untouched by them
    assert snapshot.id == 5204214
    assert snapshot.name == "MySnapshot"


@pytest.mark.parametrize(
    ("row_key", "raw", "field"),
    [
        pytest.param("id", "abc", "id", id="id-not-int"),
        pytest.param("id", "", "id", id="id-empty"),
        pytest.param("id", "1.5", "id", id="id-decimal"),
        pytest.param("image_size", "3GB", "image_size", id="image_size-unit"),
        pytest.param("image_size", "3.5", "image_size", id="image_size-decimal"),
        pytest.param("image_size", "", "image_size", id="image_size-empty"),
        pytest.param("min_disk", "twenty", "min_disk", id="min_disk"),
        pytest.param("min_ram", "0x10", "min_ram", id="min_ram-hex"),
        pytest.param("item_real_status", "٣", "item_real_status", id="non-ascii-digit"),
        pytest.param("createdate", "2024-13-01", "createdate", id="date-bad-month"),
        pytest.param("createdate", "23.07.2024", "createdate", id="date-dotted"),
        pytest.param("createdate", "yesterday", "createdate", id="date-words"),
        pytest.param("fleio_id", "not-a-uuid", "fleio_id", id="uuid-garbage"),
        pytest.param("fleio_id", "afd72725-81aa-43ad-984c", "fleio_id", id="uuid-short"),
        pytest.param("protected", "maybe", "protected", id="on-off-garbage"),
        pytest.param("protected", "2", "protected", id="on-off-number"),
    ],
)
def test_bad_value_is_a_response_error(row_key: str, raw: str, field: str) -> None:
    # `.field` is the name the row (the API page) gives the field: the model's
    # `created` is reported as `createdate`, so `.value` is the raw row value.
    with pytest.raises(ResponseError) as info:
        snapshot_from_row(PAGE_ROW | {row_key: raw}, INSTANCE)
    assert info.value.field == field
    assert info.value.value == raw
    assert field in str(info.value)


def test_missing_id_is_a_response_error() -> None:
    row = {k: v for k, v in PAGE_ROW.items() if k != "id"}
    with pytest.raises(ResponseError) as info:
        snapshot_from_row(row, INSTANCE)
    assert info.value.field == "id"
    assert info.value.value is None


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        pytest.param("instance_id", "99", "instance_id", INSTANCE, id="instance_id"),
        pytest.param("extra", "hijack", "extra", None, id="extra"),
        pytest.param("status_text", "Forged", "status_text", "Active", id="status_text"),
        pytest.param("client", "evil", "_client", None, id="client"),
        pytest.param("_client", "evil", "_client", None, id="_client"),
        pytest.param("status", "Killed", "status", SnapshotStatus.ACTIVE, id="status"),
        pytest.param("created", "1999-01-01", "created", datetime.date(2024, 7, 23), id="created"),
    ],
)
def test_model_only_names_in_a_row_go_to_extra(
    key: str, value: str, field: str, expected: object
) -> None:
    snapshot = snapshot_from_row(PAGE_ROW | {key: value}, INSTANCE)
    assert snapshot.extra[key] == value
    if field == "extra":
        assert dict(snapshot.extra) == {"extra": "hijack"}
    else:
        assert getattr(snapshot, field) == expected


def test_all_model_only_names_together_cannot_override() -> None:
    hostile = {
        "instance_id": "1",
        "extra": "x",
        "status_text": "Forged",
        "client": "evil",
        "_client": "evil",
    }
    snapshot = snapshot_from_row(PAGE_ROW | hostile, INSTANCE)
    assert snapshot.instance_id == INSTANCE
    assert snapshot.status_text == "Active"
    assert snapshot._client is None
    assert dict(snapshot.extra) == hostile


def test_rows_then_converter_reads_createdate_given_as_a_list() -> None:
    doc = {
        "elem": {
            "id": {"$": "5204214"},
            "createdate": [{"$": "2024-07-23"}],
            "fleio_status": {"$": "Saving"},
            "image_size": {},
            "description": {},
        }
    }
    [row] = rows(doc)
    snapshot = snapshot_from_row(row, INSTANCE)
    assert snapshot.created == datetime.date(2024, 7, 23)
    assert snapshot.image_size is None
    assert snapshot.status is SnapshotStatus.SAVING
    assert snapshot.extra == {}
