"""The document rules backups and copies add: weekdays, schedule time, choices, page fields."""

from __future__ import annotations

import datetime

import pytest

from zomro_async import InvalidRequestError, LimitExceeded, ResponseError, Weekday
from zomro_async._core import _document

MON, TUE, WED, THU, FRI, SAT, SUN = Weekday


@pytest.mark.parametrize(
    ("days", "form"),
    [
        ({MON}, "1"),
        ({SUN}, "0"),
        ({MON, TUE}, "1,2"),
        ({SUN, MON}, "1,0"),  # the panel's order: Monday first, Sunday (0) last
        (set(Weekday), "1,2,3,4,5,6,0"),
        ([SAT, SAT, FRI], "5,6"),
    ],
)
def test_weekdays_are_sent_as_panel_numbers_sunday_zero(days: set[Weekday], form: str) -> None:
    assert _document.weekdays_form(days) == form


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Monday Tuesday", {MON, TUE}),
        ("Sunday", {SUN}),
        ("monday  SUNDAY", {MON, SUN}),
        ("Monday,Wednesday", {MON, WED}),
        ("Mon Thu Sat", {THU, MON, SAT}),
        ("Monday Tuesday Wednesday Thursday Friday Saturday Sunday", set(Weekday)),
        ("", set()),
    ],
)
def test_weekdays_are_listed_back_as_english_names(text: str, days: set[Weekday]) -> None:
    assert _document.weekdays_from_names(text) == frozenset(days)


@pytest.mark.parametrize("text", ["Funday", "1,2", "Montag"])
def test_a_word_that_names_no_day_is_a_response_error(text: str) -> None:
    with pytest.raises(ResponseError) as caught:
        _document.weekdays_from_names(text)
    assert caught.value.field == "rotation_days"


def test_weekdays_round_trip_through_both_directions() -> None:
    names = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday"}
    names |= {6: "Saturday", 0: "Sunday"}
    for day in Weekday:
        number = int(_document.weekdays_form({day}))
        assert _document.weekdays_from_names(names[number]) == {day}


PLUS_3 = datetime.timezone(datetime.timedelta(hours=3))


@pytest.mark.parametrize(
    ("at", "form", "shift"),
    [
        (datetime.time(2, 1), "02:01", 0),
        (datetime.time(0, 0), "00:00", 0),
        (datetime.time(23, 59), "23:59", 0),
        (datetime.time(2, 1, tzinfo=PLUS_3), "02:01", 0),  # already the panel's clock
        (datetime.time(20, 30, tzinfo=datetime.UTC), "23:30", 0),
        (datetime.time(23, 30, tzinfo=datetime.UTC), "02:30", 1),  # the next day there
        (datetime.time(1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5))), "23:00", -1),
    ],
)
def test_the_schedule_time_is_hh_mm_on_the_panels_clock(
    at: datetime.time, form: str, shift: int
) -> None:
    assert _document.schedule_time_form(at) == (form, shift)


@pytest.mark.parametrize(
    ("days", "shift", "form"),
    [
        ({SUN}, 1, "1"),  # Sunday 23:30 UTC is Monday 02:30 on the panel's clock
        ({MON, SAT}, 1, "2,0"),
        ({MON}, -1, "0"),
        ({MON, SUN}, 0, "1,0"),
    ],
)
def test_weekdays_move_with_a_time_that_crossed_midnight(
    days: set[Weekday], shift: int, form: str
) -> None:
    assert _document.weekdays_form(days, shift=shift) == form


def test_a_time_with_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="to the minute"):
        _document.schedule_time_form(datetime.time(2, 1, 30))


@pytest.mark.parametrize(
    ("text", "at"),
    [("02:01", (2, 1)), ("2:01", (2, 1)), (" 23:59 ", (23, 59)), ("00:00:00", (0, 0))],
)
def test_the_listed_time_is_read_as_a_naive_time(text: str, at: tuple[int, int]) -> None:
    assert _document.schedule_time_from_text(text) == datetime.time(*at)


@pytest.mark.parametrize("text", ["24:00", "2:1", "12:60", "noon", "", "02:01:30"])
def test_a_listed_time_that_is_no_time_is_a_response_error(text: str) -> None:
    with pytest.raises(ResponseError) as caught:
        _document.schedule_time_from_text(text)
    assert caught.value.field == "rotation_time"


REGIONS = {
    "$name": "region",
    "val": [{"$key": "7", "$": "Netherlands-1"}, {"$key": "9", "$": "Germany-1"}],
}


@pytest.mark.parametrize(
    ("doc", "offered"),
    [
        ({"slist": [REGIONS]}, {"7": "Netherlands-1", "9": "Germany-1"}),
        ({"slist": REGIONS}, {"7": "Netherlands-1", "9": "Germany-1"}),  # one slist: an object
        ({"slist": {"$name": "region", "val": {"$key": "7", "$": "N1"}}}, {"7": "N1"}),
        ({"slist": [{"$name": "other", "val": REGIONS["val"]}]}, {}),
        ({"slist": [{"$name": "region"}]}, {}),  # nothing offered
        ({"slist": [{"$name": "region", "val": [{"$key": "7"}]}]}, {"7": "7"}),  # no label
        ({"slist": [{"$name": "region", "val": ["junk", {"$": "no key"}]}]}, {}),
        ({}, {}),
    ],
)
def test_choices_are_the_offered_keys_and_labels(
    doc: dict[str, object], offered: dict[str, str]
) -> None:
    assert _document.choices(doc, "region") == offered


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        ({"cost": {"stat_cost": {"$": "0.05"}}}, "0.05"),
        ({"cost": {}}, None),
        ({"cost": "flat"}, None),
        ({"cost": {"stat_cost": {"$": {"deep": 1}}}}, None),
        ({}, None),
    ],
)
def test_nested_value_reads_a_path_or_none(doc: dict[str, object], text: str | None) -> None:
    assert _document.nested_value(doc, "cost", "stat_cost") == text


@pytest.mark.parametrize(
    ("node", "count"),
    [({"$": "3"}, 3), ({"$": " 12 "}, 12), ({"$": "-1"}, None), ({"$": "x"}, None), (None, None)],
)
def test_count_value_is_a_non_negative_int_or_none(node: object, count: int | None) -> None:
    assert _document.count_value({"manual_created_today": node}, "manual_created_today") == count


def test_a_limit_refusal_is_a_limit_exceeded_which_is_an_invalid_request() -> None:
    error = _document.error_from(
        {"error": {"$type": "limit", "$object": "manual_backups_per_day", "msg": {"$": "no"}}},
        "instances.fleio_bckps.edit",
    )
    assert isinstance(error, LimitExceeded)
    assert isinstance(error, InvalidRequestError)
    assert (error.type, error.object) == ("limit", "manual_backups_per_day")
