"""Retention as `restic forget --keep-*` applies it: restic's documented examples, every rule."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import zomro_async as z
from zomro_async._core._retention import RULES, plan_retention

Plan = tuple[list[tuple[str, tuple[str, ...]]], list[str]]


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def plan(policy: z.Retention, times: list[str], always: str | None = None) -> Plan:
    """The plan over snapshots named by their times: (kept with rules, removed), newest first."""
    result = plan_retention(policy, [(t, at(t)) for t in times], always=always)
    return [(t, rules) for t, rules in result.kept], list(result.removed)


# -- restic's documentation ("Removing snapshots according to a policy") -------------

# "one backup every Sunday for 12 weeks"
SUNDAYS = [
    "2019-09-01 11:00:00",
    "2019-09-08 11:00:00",
    "2019-09-15 11:00:00",
    "2019-09-22 11:00:00",
    "2019-09-29 11:00:00",
    "2019-10-06 11:00:00",
    "2019-10-13 11:00:00",
    "2019-10-20 11:00:00",
    "2019-10-27 11:00:00",
    "2019-11-03 11:00:00",
    "2019-11-10 11:00:00",
    "2019-11-17 11:00:00",
]


@pytest.mark.parametrize(
    ("policy", "times", "kept", "removed"),
    [
        pytest.param(
            z.Retention(last=1),
            ["2017-02-21 10:48:33", "2017-02-21 10:49:18"],
            [("2017-02-21 10:49:18", ("last",))],
            ["2017-02-21 10:48:33"],
            id="forget --keep-last 1",
        ),
        pytest.param(
            z.Retention(daily=4),
            SUNDAYS,
            [(t, ("daily",)) for t in reversed(SUNDAYS[-4:])],
            list(reversed(SUNDAYS[:-4])),
            id="forget --keep-daily 4, a backup every Sunday for 12 weeks",
        ),
        pytest.param(
            z.Retention(hourly=1, daily=1, weekly=1),
            SUNDAYS,
            [("2019-11-17 11:00:00", ("hourly", "daily", "weekly"))],
            list(reversed(SUNDAYS[:-1])),
            id="the most recent snapshot on a Sunday matches hourly, daily and weekly",
        ),
    ],
)
def test_restic_documented_examples(
    policy: z.Retention,
    times: list[str],
    kept: list[tuple[str, tuple[str, ...]]],
    removed: list[str],
) -> None:
    assert plan(policy, times) == (kept, removed)


def test_restic_one_backup_a_day_for_100_years() -> None:
    # "--keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 would keep the
    # most recent 7 daily snapshots and 4 last-day-of-the-week ones (since the 7 dailies
    # already include 1 weekly). Additionally, 12 or 11 last-day-of-the-month snapshots
    # [...]. And finally 75 or 74 last-day-of-the-year snapshots". The last day is a
    # Sunday, so that the week of the 7 dailies ends with them.
    last = datetime.date(2023, 12, 31)
    assert last.isoweekday() == 7
    days = [datetime.date(1924, 1, 1) + datetime.timedelta(n) for n in range(36_525)]
    assert days[-1] == last
    dated = [(d, datetime.datetime.combine(d, datetime.time(3))) for d in days]
    policy = z.Retention(daily=7, weekly=5, monthly=12, yearly=75)

    result = plan_retention(policy, dated)

    kept = dict(result.kept)
    by_rule = {rule: sorted(d for d, rules in kept.items() if rule in rules) for rule in RULES}
    week = datetime.timedelta(7)
    assert by_rule["daily"] == [last - datetime.timedelta(n) for n in range(6, -1, -1)]
    assert by_rule["weekly"] == [last - n * week for n in range(4, -1, -1)]
    only_weekly = [d for d, rules in kept.items() if rules == ("weekly",)]
    assert len(only_weekly) == 4
    month_ends = [datetime.date(2023, m + 1, 1) - datetime.timedelta(1) for m in range(1, 12)]
    assert by_rule["monthly"] == [*month_ends, last]
    assert len([d for d, rules in kept.items() if rules == ("monthly",)]) == 11
    assert by_rule["yearly"] == [datetime.date(y, 12, 31) for y in range(1949, 2024)]
    assert len([d for d, rules in kept.items() if rules == ("yearly",)]) == 74
    assert kept[last] == ("daily", "weekly", "monthly", "yearly")
    assert len(kept) == 7 + 4 + 11 + 74
    assert len(result.removed) == len(days) - len(kept)


# -- each rule ------------------------------------------------------------------------

TABLE: list[Any] = [
    pytest.param(
        z.Retention(last=3),
        ["2026-01-01 01:00", "2026-01-01 01:00:01", "2026-01-01 01:00:02", "2026-01-01 01:00:03"],
        [
            ("2026-01-01 01:00:03", ("last",)),
            ("2026-01-01 01:00:02", ("last",)),
            ("2026-01-01 01:00:01", ("last",)),
        ],
        ["2026-01-01 01:00"],
        id="last: the N most recent, whatever their periods",
    ),
    pytest.param(
        z.Retention(last=9),
        ["2026-01-01 01:00", "2026-01-02 01:00"],
        [("2026-01-02 01:00", ("last",)), ("2026-01-01 01:00", ("last",))],
        [],
        id="last: fewer snapshots than N keeps them all",
    ),
    pytest.param(
        z.Retention(hourly=2),
        ["2026-01-01 10:00", "2026-01-01 10:59", "2026-01-01 11:00", "2026-01-01 11:30"],
        [("2026-01-01 11:30", ("hourly",)), ("2026-01-01 10:59", ("hourly",))],
        ["2026-01-01 11:00", "2026-01-01 10:00"],
        id="hourly: hours are :00 to :59, the most recent of each",
    ),
    pytest.param(
        z.Retention(daily=2),
        ["2026-01-01 00:00", "2026-01-01 23:59", "2026-01-02 00:00"],
        [("2026-01-02 00:00", ("daily",)), ("2026-01-01 23:59", ("daily",))],
        ["2026-01-01 00:00"],
        id="daily: days are 00:00 to 23:59",
    ),
    pytest.param(
        z.Retention(daily=3),
        ["2025-11-05 02:00", "2025-12-20 02:00", "2026-01-01 02:00"],
        [
            ("2026-01-01 02:00", ("daily",)),
            ("2025-12-20 02:00", ("daily",)),
            ("2025-11-05 02:00", ("daily",)),
        ],
        [],
        id="daily: only days with a snapshot count, not the last N calendar days",
    ),
    pytest.param(
        z.Retention(weekly=2),
        ["2026-01-04 23:59", "2026-01-05 00:00", "2026-01-11 12:00"],
        [("2026-01-11 12:00", ("weekly",)), ("2026-01-04 23:59", ("weekly",))],
        ["2026-01-05 00:00"],
        id="weekly: weeks are Monday 00:00 to Sunday 23:59",
    ),
    pytest.param(
        z.Retention(weekly=2),
        ["2020-12-31 12:00", "2021-01-03 12:00", "2021-01-04 12:00"],
        [("2021-01-04 12:00", ("weekly",)), ("2021-01-03 12:00", ("weekly",))],
        ["2020-12-31 12:00"],
        id="weekly: ISO weeks, 2020-12-31 and 2021-01-03 are both 2020-W53",
    ),
    pytest.param(
        z.Retention(monthly=2),
        ["2025-11-30 09:00", "2025-12-01 09:00", "2025-12-31 09:00", "2026-01-15 09:00"],
        [("2026-01-15 09:00", ("monthly",)), ("2025-12-31 09:00", ("monthly",))],
        ["2025-12-01 09:00", "2025-11-30 09:00"],
        id="monthly: the most recent of each month",
    ),
    pytest.param(
        z.Retention(yearly=2),
        ["2024-06-01 09:00", "2024-12-31 09:00", "2025-03-01 09:00", "2026-01-01 09:00"],
        [("2026-01-01 09:00", ("yearly",)), ("2025-03-01 09:00", ("yearly",))],
        ["2024-12-31 09:00", "2024-06-01 09:00"],
        id="yearly: the most recent of each year",
    ),
    pytest.param(
        z.Retention(last=2, daily=3),
        ["2026-01-01 01:00", "2026-01-01 02:00", "2026-01-02 01:00", "2026-01-02 02:00"],
        [
            ("2026-01-02 02:00", ("last", "daily")),
            ("2026-01-02 01:00", ("last",)),
            ("2026-01-01 02:00", ("daily",)),
        ],
        ["2026-01-01 01:00"],
        id="rules are ORed and each one that keeps a snapshot is recorded",
    ),
    pytest.param(
        z.Retention(daily=1, monthly=3),
        ["2025-10-10 02:00", "2025-11-10 02:00", "2025-11-20 02:00", "2025-12-10 02:00"],
        [
            ("2025-12-10 02:00", ("daily", "monthly")),
            ("2025-11-20 02:00", ("monthly",)),
            ("2025-10-10 02:00", ("monthly",)),
        ],
        ["2025-11-10 02:00"],
        id="a bucket counts its own periods: the newest is the first of each",
    ),
]


@pytest.mark.parametrize(("policy", "times", "kept", "removed"), TABLE)
def test_each_rule(
    policy: z.Retention,
    times: list[str],
    kept: list[tuple[str, tuple[str, ...]]],
    removed: list[str],
) -> None:
    assert plan(policy, times) == (kept, removed)
    assert plan(policy, list(reversed(times))) == (kept, removed)  # the input order is not it


def test_equal_times_keep_their_given_order() -> None:
    result = plan_retention(
        z.Retention(last=1), [("newer", at("2026-01-01")), ("older", at("2026-01-01"))]
    )
    assert result.kept == (("newer", ("last",)),)
    assert result.removed == ("older",)


def test_the_item_always_kept_is_kept_by_new_when_no_rule_keeps_it() -> None:
    times = ["2026-01-01 01:00", "2026-01-01 02:00"]
    assert plan(z.Retention(last=1), times, always="2026-01-01 01:00") == (
        [("2026-01-01 02:00", ("last",)), ("2026-01-01 01:00", ("new",))],
        [],
    )
    # Kept by a rule anyway: it is that rule's.
    assert plan(z.Retention(last=1), times, always="2026-01-01 02:00")[0] == [
        ("2026-01-01 02:00", ("last",))
    ]


def test_nothing_to_plan() -> None:
    assert plan(z.Retention(daily=7), []) == ([], [])


# -- the policy itself ----------------------------------------------------------------


def test_a_retention_names_its_rules() -> None:
    policy = z.Retention(yearly=2, last=1, daily=7)
    assert policy.rules == (("last", 1), ("daily", 7), ("yearly", 2))
    assert str(policy) == "last 1, daily 7, yearly 2"
    assert policy == z.Retention(last=1, daily=7, yearly=2)
    assert hash(policy) == hash(z.Retention(last=1, daily=7, yearly=2))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
    ("value", "error"),
    [("3", TypeError), (1.0, TypeError), (True, TypeError), (None, TypeError), (-1, ValueError)],
)
def test_bad_counts_are_refused(rule: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=rule):
        z.Retention(**{rule: value, "last" if rule != "last" else "daily": 1})


def test_a_retention_that_keeps_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="keeps nothing"):
        z.Retention()
    with pytest.raises(ValueError, match="keeps nothing"):
        z.Retention(last=0, daily=0)


def test_counts_are_keywords_and_the_policy_is_frozen() -> None:
    with pytest.raises(TypeError):
        z.Retention(3)  # type: ignore[misc]
    policy = z.Retention(last=3)
    with pytest.raises(AttributeError):
        policy.last = 4  # type: ignore[misc]
