"""Retention policies as restic's `forget --keep-*` applies them: what stays, by which rule."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, Generic, Literal, TypeVar

import attrs

Rule = Literal["last", "hourly", "daily", "weekly", "monthly", "yearly"]
# In the order restic applies them, which is the order a snapshot's rules are listed in.
RULES: tuple[Rule, ...] = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
# The rule of the one item a plan must keep (`always`) when no other rule keeps it.
ALWAYS = "new"

T = TypeVar("T")


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


@attrs.frozen(kw_only=True)
class Retention:
    """Which snapshots a rotation keeps, as restic's `forget --keep-*` says it.

    Each rule with a count N above 0 keeps, newest first, the most recent
    snapshot of each of the last N periods that have one: `hourly` hours,
    `daily` days, `weekly` ISO weeks (Monday to Sunday), `monthly` months,
    `yearly` years; `last` keeps the N most recent snapshots. A snapshot kept
    by any rule is kept. Periods are calendar ones, and only periods with a
    snapshot count.

    Each count (`last`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`,
    by keyword) is an int, 0 or more, and at least one is above 0.

    Raises:
        TypeError: a count is not an int (a bool is not one).
        ValueError: a count is negative, or every count is 0.
    """

    last: int = attrs.field(default=0, validator=_count)
    hourly: int = attrs.field(default=0, validator=_count)
    daily: int = attrs.field(default=0, validator=_count)
    weekly: int = attrs.field(default=0, validator=_count)
    monthly: int = attrs.field(default=0, validator=_count)
    yearly: int = attrs.field(default=0, validator=_count)

    def __attrs_post_init__(self) -> None:
        if not self.rules:
            raise ValueError(
                "a retention keeps nothing: set at least one of " + ", ".join(RULES) + " above 0"
            )

    @property
    def rules(self) -> tuple[tuple[Rule, int], ...]:
        """The rules set (above 0), as `(rule, count)` pairs in restic's order."""
        counts: tuple[int, ...] = attrs.astuple(self)
        return tuple((rule, n) for rule, n in zip(RULES, counts, strict=True) if n)

    def __str__(self) -> str:
        return ", ".join(f"{rule} {n}" for rule, n in self.rules)


def period_of(rule: Rule, when: datetime.datetime) -> tuple[int, ...]:
    """The calendar period of `when` a rule other than `last` counts by, on `when`'s own clock."""
    if rule == "hourly":
        return (when.year, when.month, when.day, when.hour)
    if rule == "daily":
        return (when.year, when.month, when.day)
    if rule == "weekly":
        iso = when.isocalendar()
        return (iso.year, iso.week)
    if rule == "monthly":
        return (when.year, when.month)
    if rule == "yearly":
        return (when.year,)
    raise ValueError(f"{rule!r} has no period")


@attrs.frozen(kw_only=True)
class RetentionPlan(Generic[T]):
    """What a policy keeps, each with the rules that keep it, and what it removes
    (both newest first)."""

    kept: tuple[tuple[T, tuple[str, ...]], ...]
    removed: tuple[T, ...]


def plan_retention(
    policy: Retention,
    dated: Iterable[tuple[T, datetime.datetime]],
    *,
    always: T | None = None,
) -> RetentionPlan[T]:
    """Apply `policy` to `(item, time)` pairs, as `restic forget` does.

    Items are taken newest first (equal times in the order given: give the
    newer first). For each rule set, an item is kept when its period differs
    from the last period that rule kept, until the rule has kept its count
    (`last`: every item is a period of its own). An item is kept when any rule
    keeps it, and each of those rules is recorded. An item equal to `always`
    is kept in any case: by the rule `"new"` when no other keeps it, and then
    it takes no rule's place.
    """
    left = dict(policy.rules)
    last_kept: dict[Rule, tuple[int, ...]] = {}
    kept: list[tuple[T, tuple[str, ...]]] = []
    removed: list[T] = []
    for item, when in sorted(dated, key=lambda pair: pair[1], reverse=True):
        rules: list[str] = []
        for rule, count in left.items():
            if count == 0:
                continue
            if rule != "last":
                period = period_of(rule, when)
                if last_kept.get(rule) == period:
                    continue
                last_kept[rule] = period
            left[rule] = count - 1
            rules.append(rule)
        if not rules and always is not None and item == always:
            rules.append(ALWAYS)
        if rules:
            kept.append((item, tuple(rules)))
        else:
            removed.append(item)
    return RetentionPlan(kept=tuple(kept), removed=tuple(removed))
