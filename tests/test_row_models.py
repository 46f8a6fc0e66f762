"""RowModels: a listing's unchanged rows give back their models; any change builds anew."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

import zomro_async as z
from tests.conftest import FakeApi, listing, row
from zomro_async._core._row_models import RowModels


class Counting:
    """A `build` that counts its calls and makes a fresh object each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, fields: Mapping[str, str]) -> dict[str, str]:
        self.calls += 1
        return dict(fields)


A = {"id": "1", "name": "a", "fleio_status": "Saving"}
B = {"id": "2", "name": "b", "fleio_status": "Active"}


def test_an_unchanged_row_gives_back_its_model_without_building() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    first = cache.models("vm", [A, B], build)
    again = cache.models("vm", [dict(A), dict(B)], build)  # equal rows, new dicts
    assert again[0] is first[0]
    assert again[1] is first[1]
    assert build.calls == 2


@pytest.mark.parametrize("field", ["name", "fleio_status", "extra_field"])
def test_any_changed_field_builds_a_new_model(field: str) -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    (first,) = cache.models("vm", [A], build)
    (changed,) = cache.models("vm", [{**A, field: "other"}], build)
    assert changed is not first
    assert changed[field] == "other"
    assert build.calls == 2


def test_only_the_last_listing_is_kept_per_listing() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    (first, _) = cache.models("vm", [A, B], build)
    cache.models("vm", [B], build)  # A is gone from the listing
    (back,) = cache.models("vm", [A], build)  # and back: built again
    assert back is not first
    assert build.calls == 3


def test_listings_are_kept_apart() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    (one,) = cache.models("vm1", [A], build)
    (two,) = cache.models("vm2", [A], build)
    assert one is not two
    assert build.calls == 2


def test_the_least_recently_listed_is_forgotten_past_the_bound() -> None:
    cache: RowModels[dict[str, str]] = RowModels(max_listings=2)
    build = Counting()
    (kept,) = cache.models("a", [A], build)
    cache.models("b", [A], build)
    cache.models("a", [A], build)  # "a" listed again: now the most recent
    cache.models("c", [A], build)  # "b" is forgotten
    assert len(cache) == 2
    assert cache.models("a", [A], build)[0] is kept
    calls = build.calls
    cache.models("b", [A], build)
    assert build.calls == calls + 1


def test_a_row_that_fails_to_build_leaves_the_memory_as_it_was() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    (first,) = cache.models("vm", [A], build)

    def broken(fields: Mapping[str, str]) -> dict[str, str]:
        raise z.ResponseError("bad row")

    with pytest.raises(z.ResponseError):
        cache.models("vm", [A, {"id": "3"}], broken)
    assert cache.models("vm", [A], build)[0] is first


async def test_a_poll_of_unchanged_rows_returns_the_same_models(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(
        "instances.snapshots",
        listing(row(1, "a", "Saving"), row(2, "b", "Active")),
        listing(row(1, "a", "Saving"), row(2, "b", "Active")),
        listing(row(1, "a", "Active"), row(2, "b", "Active")),
    )
    first = await client.snapshots.list(7)
    second = await client.snapshots.list(7)
    third = await client.snapshots.list(7)
    assert second[0] is first[0]
    assert second[1] is first[1]
    assert third[0] is not first[0]  # its status changed: never a stale model
    assert third[0].status is z.SnapshotStatus.ACTIVE
    assert third[1] is first[1]


def test_the_very_rows_listed_last_give_the_same_models_without_a_look() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    rows = (A, B)
    first = cache.models("vm", rows, build)
    again = cache.models("vm", rows, build)
    assert again == first
    assert all(a is b for a, b in zip(again, first, strict=True))
    assert again is not first  # the caller's own list
    assert build.calls == 2


def test_the_same_list_given_again_is_read_again_for_it_may_have_changed() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    rows = [A]
    (first,) = cache.models("vm", rows, build)
    rows[0] = {**A, "fleio_status": "Active"}
    (again,) = cache.models("vm", rows, build)
    assert again["fleio_status"] == "Active"
    assert again is not first


def test_the_same_rows_object_of_another_listing_is_read_for_that_listing() -> None:
    cache: RowModels[dict[str, str]] = RowModels()
    build = Counting()
    rows = (A,)
    (first,) = cache.models("vm", rows, build)
    (other,) = cache.models("other-vm", rows, build)
    assert other is not first
    assert build.calls == 2


async def test_a_poll_answered_byte_for_byte_as_before_reads_no_row(
    api: FakeApi, client: z.ZomroClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zomro_async._core import _document

    read: list[int] = []
    real_rows = _document.rows

    def counted(doc: _document.Doc) -> list[_document.Row]:
        read.append(1)
        return real_rows(doc)

    monkeypatch.setattr(_document, "rows", counted)
    api.on(
        "instances.snapshots",
        listing(row(1, "a", "Saving")),
        listing(row(1, "a", "Saving")),
        listing(row(1, "a", "Active")),
    )
    first = await client.snapshots.list(7)
    second = await client.snapshots.list(7)
    assert second[0] is first[0]
    assert len(read) == 1  # the second answer was the first's bytes: not read again
    (third,) = await client.snapshots.list(7)
    assert third.status is z.SnapshotStatus.ACTIVE
    assert len(read) == 2
