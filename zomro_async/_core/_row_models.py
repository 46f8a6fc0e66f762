"""The models of each listing's last rows: a row that did not change is not structured again."""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Generic, NamedTuple, TypeVar

M = TypeVar("M")

# How many listings (an instance's snapshots, the account's images, ...) keep
# their last rows' models. Each keeps only its last listing's rows, so the
# memory is bounded by this many listings' rows; the least recently listed
# is forgotten first.
MAX_LISTINGS = 1024


class RowModels(Generic[M]):
    """Frozen models of the rows of each listing, by row id, as last listed.

    A row equal to its id's row in the listing's last rows (every field the
    same) gets that very model back; any change in any field builds a new one,
    so a model is never stale. The very rows listed last time (the same tuple,
    as the session gives for answers that did not change) get the same models
    without a look at a row. Models are frozen, so sharing
    them is safe.
    """

    def __init__(self, max_listings: int = MAX_LISTINGS) -> None:
        self._max = max_listings
        self._last: collections.OrderedDict[Hashable, _Listed[M]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def models(
        self,
        listing: Hashable,
        rows: Sequence[Mapping[str, str]],
        build: Callable[[Mapping[str, str]], M],
    ) -> list[M]:
        """The model of each row of `listing`, built by `build` unless the row is
        the same as in the listing's last rows. Raises what `build` raises (the
        listing's memory is then left as it was)."""
        last = self._last.get(listing)
        # Only a tuple: a list given again could hold other rows by now.
        if last is not None and last.rows is rows and isinstance(rows, tuple):
            self._last.move_to_end(listing)
            return list(last.found)
        last_rows, last_models = (last.rows_by_id, last.models_by_id) if last else ({}, {})
        rows_now: dict[str | None, Mapping[str, str]] = {}
        models_now: dict[str | None, M] = {}
        found: list[M] = []
        for row in rows:
            key = row.get("id")
            model = last_models[key] if last_rows.get(key) == row else build(row)
            rows_now[key] = row
            models_now[key] = model
            found.append(model)
        remember_last(
            self._last, listing, _Listed(rows, tuple(found), rows_now, models_now), self._max
        )
        return found


K = TypeVar("K")
V = TypeVar("V")


def remember_last(memory: collections.OrderedDict[K, V], key: K, value: V, bound: int) -> None:
    """Keep `value` as what `key` gave last, the most recent of `memory`; past
    `bound` keys, the least recently given is forgotten."""
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > bound:
        memory.popitem(last=False)


class _Listed(NamedTuple, Generic[M]):
    """One listing's last rows and models: as listed, and by row id.

    By id in two dicts rather than one of pairs: a pair per row would be one
    more object for the garbage collector to walk, every row of every listing
    kept.
    """

    rows: Sequence[Mapping[str, str]]
    found: tuple[M, ...]
    rows_by_id: dict[str | None, Mapping[str, str]]
    models_by_id: dict[str | None, M]
