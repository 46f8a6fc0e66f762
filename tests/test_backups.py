"""Backup calls over aioresponses: the forms sent, rows read, limits, schedules, rotation."""

from __future__ import annotations

import datetime
import decimal

import pytest

import zomro_async as z
from tests.conftest import FakeApi, doc, error, listing, row

INSTANCE = 5203773
LIST = "instances.fleio_bckps"
CREATE = "instances.fleio_bckps.edit"
SCHEDULES = "instances.fleio_bckps.schedule"
MON, TUE, WED, THU, FRI, SAT, SUN = z.Weekday


def sent(api: FakeApi, index: int, *fields: str) -> dict[str, str]:
    form = api.forms[index]
    return {k: form[k] for k in ("func", *fields) if k in form}


# -- the shared calls, as backups -----------------------------------------------------


async def test_list_reads_backup_rows_with_their_type(api: FakeApi, client: z.ZomroClient) -> None:
    api.on(
        LIST,
        listing(
            row(11, "nightly", "Active", backup_type="scheduled", image_size="3"),
            row(12, "by hand", "Saving", backup_type="manual"),
            row(13, "odd", "Active", backup_type="weekly?"),
        ),
    )
    first, second, third = await client.backups.list(INSTANCE)
    assert isinstance(first, z.Backup)
    assert not isinstance(first, z.Snapshot)
    assert (first.id, first.backup_type, first.status, first.image_size) == (
        11,
        z.BackupType.SCHEDULED,
        z.ImageStatus.ACTIVE,
        3,
    )
    assert second.backup_type is z.BackupType.MANUAL
    assert third.backup_type is z.BackupType.UNKNOWN
    assert sent(api, 0, "elid") == {"func": LIST, "elid": str(INSTANCE)}
    assert api.filter_forms == []  # the backups listing has no stored filter to clear


async def test_create_sends_the_panels_fields_and_finds_the_backup_by_listing(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(CREATE, doc(ok={}))
    api._script[LIST] = [
        listing(row(1, "old", "Active")),
        listing(row(1, "old", "Active"), row(2, "b1")),
    ]
    backup = await client.backups.create(INSTANCE, "b1")
    assert (backup.id, backup.name, backup.instance_id) == (2, "b1", INSTANCE)
    assert isinstance(backup, z.Backup)
    assert sent(api, 1, "plid", "name", "rotation_days", "rotation_time", "sok") == {
        "func": CREATE,
        "plid": str(INSTANCE),
        "name": "b1",
        "rotation_days": "",
        "rotation_time": "",
        "sok": "ok",
    }


async def test_a_backup_name_is_at_most_100_characters(api: FakeApi, client: z.ZomroClient) -> None:
    with pytest.raises(ValueError, match="at most 100"):
        await client.backups.create(INSTANCE, "b" * 101)
    assert api.forms == []
    api.on(CREATE, doc(ok={}))
    api._script[LIST] = [listing(), listing(row(3, "b" * 100))]
    assert (await client.backups.create(INSTANCE, "b" * 100)).id == 3


async def test_a_limit_refusal_is_limit_exceeded_and_not_retried(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(LIST, listing())
    api.on(CREATE, error("limit", "manual_backups_per_day", "Limit reached"))
    with pytest.raises(z.LimitExceeded) as caught:
        await client.backups.create(INSTANCE, "sixth")
    assert caught.value.object == "manual_backups_per_day"
    assert api.funcs().count(CREATE) == 1


async def test_a_bulk_job_reports_the_limit_per_item(api: FakeApi, client: z.ZomroClient) -> None:
    def create(form: dict[str, str]) -> dict[str, object]:
        if form["plid"] == "2":
            return error("limit", "manual_backups_per_day")
        return doc(ok={})

    def listed(form: dict[str, str]) -> dict[str, object]:
        made = [f for f in api.forms if f["func"] == CREATE and f["plid"] == form["elid"]]
        return listing(row(100 + int(form["elid"]), "pre", "Saving")) if made else listing()

    api.on(CREATE, create)
    api.on(LIST, listed)
    one, two = await client.backups.create_many([1, 2], "pre", wait=False)
    assert one.ok
    assert isinstance(one.snapshot, z.Backup)
    assert one.snapshot_id == 101
    assert isinstance(two.error, z.LimitExceeded)
    assert two.snapshot is None


async def test_a_lost_create_answer_that_made_the_backup_is_no_duplicate(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script[LIST] = [listing(), listing(row(5, "b"))]
    api.on(CREATE, (502, "<html>bad gateway</html>"))
    backup = await client.backups.create(INSTANCE, "b")
    assert backup.id == 5
    assert api.funcs().count(CREATE) == 1


async def test_a_refused_resend_is_checked_against_the_listing_first(
    api: FakeApi, client: z.ZomroClient
) -> None:
    # The first create's answer is lost and it shows nowhere within the grace;
    # the re-send is refused for the limit, which the first one, run late, reached.
    def listed(form: dict[str, str]) -> dict[str, object]:
        late = api.funcs().count(CREATE) >= 2
        return listing(row(5, "b", "Saving")) if late else listing()

    api.on(LIST, listed)
    api.on(CREATE, (502, "<html>bad gateway</html>"), error("limit", "manual_backups_per_day"))
    backup = await client.backups.create(INSTANCE, "b")
    assert backup.id == 5
    assert api.funcs().count(CREATE) == 2


async def test_a_refused_resend_with_nothing_listed_is_the_refusal(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(LIST, listing())
    api.on(CREATE, (502, "<html>bad gateway</html>"), error("limit", "manual_backups_per_day"))
    with pytest.raises(z.LimitExceeded):
        await client.backups.create(INSTANCE, "b")


async def test_a_backup_that_is_killed_fails_its_wait_with_backup_failed(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(LIST, listing(row(5, "b", "Killed")))
    with pytest.raises(z.BackupFailed) as caught:
        await client.backups.wait_active(INSTANCE, 5)
    assert isinstance(caught.value, z.ImageFailed)
    assert caught.value.backup.id == 5
    assert caught.value.image is caught.value.backup


async def test_delete_and_protect_are_the_image_calls(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image.delete", doc(ok={}))
    await client.backups.delete(INSTANCE, 5)
    assert sent(api, 0, "plid", "elid", "elname", "sok") == {
        "func": "image.delete",
        "plid": str(INSTANCE),
        "elid": "5",
        "elname": "5",
        "sok": "ok",
    }


async def test_restore_of_a_backup_goes_through_instances(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(LIST, listing(row(5, "b", "Saving")))
    (backup,) = await client.backups.list(INSTANCE)
    with pytest.raises(ValueError, match="not Active"):
        await backup.restore(password="Sup3rSecret")
    with pytest.raises(TypeError, match="Backup"):
        await client.snapshots.restore(backup, password="Sup3rSecret")  # type: ignore[arg-type]
    assert [f for f in api.funcs() if f != LIST] == []


async def test_snapshots_delete_many_refuses_a_backup(api: FakeApi, client: z.ZomroClient) -> None:
    backup = z.Backup(id=1, instance_id=INSTANCE)
    with pytest.raises(TypeError, match="Snapshots"):
        client.snapshots.delete_many([backup])


# -- usage ------------------------------------------------------------------------


async def test_usage_reads_the_listings_page_fields(api: FakeApi, client: z.ZomroClient) -> None:
    answer = doc(manual_created_today="2", manual_created_total="7", cost={"stat_cost": "0.05"})
    api.on(LIST, answer)
    usage = await client.backups.usage(INSTANCE)
    assert usage == z.BackupUsage(
        instance_id=INSTANCE,
        made_today=2,
        made_in_all=7,
        daily_limit=5,
        total_limit=100,
        price_per_gb_day=decimal.Decimal("0.05"),
    )
    assert (usage.left_today, usage.left_in_all) == (3, 93)


async def test_usage_unknown_when_the_listing_does_not_say(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(LIST, doc(manual_created_today="6", cost={"stat_cost": "n/a"}))
    usage = await client.backups.usage(INSTANCE)
    assert (usage.made_today, usage.left_today) == (6, 0)
    assert (usage.made_in_all, usage.left_in_all, usage.price_per_gb_day) == (None, None, None)


# -- schedules ----------------------------------------------------------------------


def schedule_row(
    schedule_id: int, name: str, days: str = "Monday Tuesday", at: str = "02:01"
) -> dict[str, str]:
    return {
        "id": str(schedule_id),
        "name": name,
        "instance_id": str(INSTANCE),
        "create_date": "2026-01-01",
        "rotation_days": days,
        "rotation_time": at,
    }


async def test_schedules_are_read_with_days_and_time(api: FakeApi, client: z.ZomroClient) -> None:
    api.on(SCHEDULES, listing(schedule_row(31, "nightly", "Monday Sunday", "23:05")))
    (schedule,) = await client.backups.schedules(INSTANCE)
    assert schedule == z.BackupSchedule(
        id=31,
        instance_id=INSTANCE,
        name="nightly",
        days=frozenset({MON, SUN}),
        at=datetime.time(23, 5),
        created=datetime.date(2026, 1, 1),
    )


async def test_a_schedule_row_with_a_bad_day_is_a_response_error(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(SCHEDULES, listing(schedule_row(31, "x", "Caturday")))
    with pytest.raises(z.ResponseError) as caught:
        await client.backups.schedules(INSTANCE)
    assert caught.value.field == "rotation_days"


async def test_add_schedule_sends_numbers_and_hh_mm_and_finds_it_by_listing(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script[SCHEDULES] = [listing(), listing(schedule_row(32, "nightly"))]
    api.on("instances.fleio_bckps.schedule.edit", doc(ok={}))
    schedule = await client.backups.add_schedule(
        INSTANCE, "nightly", days={TUE, MON, SUN}, at=datetime.time(2, 1)
    )
    assert schedule.id == 32
    form = sent(api, 1, "plid", "name", "rotation_days", "rotation_time", "sok")
    assert form == {
        "func": "instances.fleio_bckps.schedule.edit",
        "plid": str(INSTANCE),
        "name": "nightly",
        "rotation_days": "1,2,0",
        "rotation_time": "02:01",
        "sok": "ok",
    }


async def test_an_aware_time_past_midnight_moves_the_days_with_it(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script[SCHEDULES] = [listing(), listing(schedule_row(33, "late", "Monday", "02:30"))]
    api.on("instances.fleio_bckps.schedule.edit", doc(ok={}))
    at = datetime.time(23, 30, tzinfo=datetime.UTC)  # Sunday 23:30 UTC
    await client.backups.add_schedule(INSTANCE, "late", days={SUN}, at=at)
    form = api.forms[1]
    assert (form["rotation_days"], form["rotation_time"]) == ("1", "02:30")  # Monday there


@pytest.mark.parametrize(
    ("days", "at", "error_type"),
    [
        (set(), datetime.time(2, 1), ValueError),
        ({1, 2}, datetime.time(2, 1), TypeError),
        ("mon", datetime.time(2, 1), TypeError),
        ({MON}, "02:01", TypeError),
        ({MON}, datetime.time(2, 1, 5), ValueError),
    ],
)
async def test_bad_schedule_input_raises_before_anything_is_sent(
    api: FakeApi, client: z.ZomroClient, days: object, at: object, error_type: type[Exception]
) -> None:
    with pytest.raises(error_type):
        await client.backups.add_schedule(INSTANCE, "n", days=days, at=at)  # type: ignore[arg-type]
    assert api.forms == []


async def test_remove_schedule_checks_it_is_the_instances_then_deletes(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(SCHEDULES, listing(schedule_row(31, "nightly")))
    api.on("instances.fleio_bckps.schedule.delete", doc(ok={}))
    with pytest.raises(z.NotFoundError):
        await client.backups.remove_schedule(INSTANCE, 99)
    assert "instances.fleio_bckps.schedule.delete" not in api.funcs()
    await client.backups.remove_schedule(INSTANCE, 31)
    assert sent(api, len(api.forms) - 1, "elid") == {
        "func": "instances.fleio_bckps.schedule.delete",
        "elid": "31",
    }


# -- rotation ---------------------------------------------------------------------


async def test_rotation_reads_backup_rotation(api: FakeApi, client: z.ZomroClient) -> None:
    api.on(SCHEDULES, doc(backup_rotation="7"))
    assert await client.backups.rotation(INSTANCE) == 7


async def test_set_rotation_sends_instances_edit(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances.edit", doc(ok={}))
    await client.backups.set_rotation(INSTANCE, 10)
    assert sent(api, 0, "elid", "backup_rotation", "clicked_button", "sok") == {
        "func": "instances.edit",
        "elid": str(INSTANCE),
        "backup_rotation": "10",
        "clicked_button": "ok",
        "sok": "ok",
    }


@pytest.mark.parametrize(
    ("keep", "error_type"), [(0, ValueError), (11, ValueError), (True, TypeError), ("3", TypeError)]
)
async def test_rotation_outside_one_to_ten_is_refused_before_sending(
    api: FakeApi, client: z.ZomroClient, keep: object, error_type: type[Exception]
) -> None:
    with pytest.raises(error_type):
        await client.backups.set_rotation(INSTANCE, keep)  # type: ignore[arg-type]
    assert api.forms == []
