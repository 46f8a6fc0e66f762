"""Send-and-reconcile: one change whose answer proves nothing, made once and never twice.

A create (of a snapshot, a backup) or a rebuild whose answer was lost may still
have acted: the listing, not the answer, tells. The `Reconciler` holds the
mechanism (when to look, how long, when a re-send is safe); an `Evidence`
holds what the listing must show: `NewNamedChild` for creates.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from .._clock import Clock
from .._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    NotFoundError,
    OutcomeUnknown,
    ResponseError,
    TransportError,
    ZomroError,
)
from . import _document
from ._poller import PollPolicy
from ._retry import RetryPolicy, is_retryable, may_have_acted
from ._session import ApiSession

logger = logging.getLogger("zomro_async")


class Named(Protocol):
    """What a create's evidence asks of a listed item: its id and its name."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


V = TypeVar("V")
N = TypeVar("N", bound=Named)


class Evidence(Protocol[V]):
    """What a listing must show for the change to count as made, and by whom.

    `describe` names the change in messages; `label` is the name an
    `OutcomeUnknown` carries; `lasting` says whether the proof stays listed
    once it shows (a new snapshot does; a rebuild's `rebuilding` passes), so
    that a watch whose listings failed for a while can still trust absence.
    """

    describe: str
    label: str
    lasting: bool

    def learn(self, listed: Sequence[V]) -> None:
        """A listing from before any request of ours may have acted: all it shows
        is someone else's."""

    def find(self, listed: Sequence[V], *, accepted: bool, created_id: int | None) -> V | None:
        """Our result, if `listed` shows it (`accepted`: the API took the change)."""


class AmbiguousEvidence(Exception):
    """The listing shows more than one item that could be the change's result."""


class NewNamedChild(Generic[N]):
    """A create's proof: an item of its name that was not listed before.

    An item counts as ours only once one of our requests may have reached the
    server; until then, every new item of that name is someone else's (another
    process creating the same name). Ids grow and the API takes one create at a
    time, so among candidates the first is ours; `doc.id` (undocumented) picks
    among candidates, never excludes.
    """

    lasting = True

    def __init__(
        self,
        *,
        name: str,
        before: set[int],
        describe: str,
        where: Callable[[N], bool] | None = None,
        one_candidate: bool = False,
    ) -> None:
        self.name = self.label = name
        self.before = set(before)  # ids that are certainly not this call's
        self.describe = describe
        self._where = where  # what else the item must be (a copy: in its region)
        # Where others' items of the name may appear meanwhile (the account's
        # images, not one locked instance's), two candidates are no proof.
        self._one_candidate = one_candidate

    def learn(self, listed: Sequence[N]) -> None:
        self.before.update(c.id for c in listed)

    def find(self, listed: Sequence[N], *, accepted: bool, created_id: int | None) -> N | None:
        fresh = [
            c
            for c in listed
            if c.id not in self.before
            and c.name == self.name
            and (self._where is None or self._where(c))
        ]
        by_id = [c for c in fresh if c.id == created_id]
        candidates = by_id or fresh
        if self._one_candidate and len(candidates) > 1:
            ids = ", ".join(str(c.id) for c in sorted(candidates, key=lambda c: c.id))
            raise AmbiguousEvidence(f"{len(candidates)} new items could be it ({ids})")
        return min(candidates, key=lambda c: c.id) if candidates else None


# A listing that fails so: it cannot tell whether an earlier request made the item.
_UNTOLD = (TransportError, AuthError, ResponseError)


# A reset or a proxy's 502 comes back at once: the server is not holding the
# request for long, if at all. (A timeout or a 504 may mean it still is.)
QUICK_FAILURE_GRACE = 10.0


def grace_for(error: TransportError, grace: float) -> float:
    """How long an ambiguous create may still land on the server.

    `grace` (the request timeout) after no answer in time or a proxy's 504: the
    server may still be working on it. Up to `QUICK_FAILURE_GRACE` after a reset
    or a 502. No time when the server answered in full (a 2xx with a bad body,
    a 4xx, a 503 refusal): it has said what it did.
    """
    if error.status == 504 or isinstance(error.__cause__, TimeoutError):
        return grace
    if error.status is None or error.status == 502:
        return min(grace, QUICK_FAILURE_GRACE)
    return 0.0


class Reconciler(Generic[V]):
    """One change of one parent, seen through to its listed result.

    The answer is undocumented (it may carry no id), so the listing is the
    proof, judged by `evidence`. After an ambiguous failure the listing is
    watched for `grace` seconds (and at least `min_watch`, the time its result
    may take to show, which the retry budget does not count) before the
    change is sent again; a failure that
    certainly had no effect (no connection was opened, a 429) is sent again
    after the backoff with no watch. Every
    attempt honours `retry` (its `attempts` and `give_up_after`, the watches
    included); a conflict (the parent is busy) is waited out until
    `conflict_deadline` on the poll schedule, and starts that budget afresh.
    """

    def __init__(
        self,
        api: ApiSession,
        *,
        func: str,
        fields: Mapping[str, str],
        list_children: Callable[[], Awaitable[Sequence[V]]],
        parent_id: int,
        evidence: Evidence[V],
        clock: Clock,
        retry: RetryPolicy,
        poll: PollPolicy,
        grace: float,
        conflict_deadline: float,
        confirm: bool = True,
        min_watch: float = 0.0,
        resend_unseen: bool = True,
    ) -> None:
        self._api = api
        self._func = func
        self._fields = fields
        self._list = list_children
        self.parent_id = parent_id
        self.evidence = evidence
        self._clock = clock
        self._retry = retry
        self._poll = poll
        self._grace = grace
        self._conflict_deadline = conflict_deadline
        # Whether an accepted change must be seen listed (a create) before it returns.
        self._confirm_listed = confirm
        self._min_watch = min_watch
        # Whether a change that may have acted, unseen after the watch, is sent
        # again (a create that lists at once) or left unknown (one that may list late).
        self._resend_unseen = resend_unseen
        self.may_have_acted = False  # one of our requests may have reached the server
        self.accepted = False  # the API answered the create with success
        self.created_id: int | None = None

    async def run(self) -> V:
        """Make the change, and return the item as listed.

        Raises:
            ConflictError: the parent stayed busy past the conflict deadline.
            OutcomeUnknown: a request may have acted and the listing could not
                tell; or the API accepted the create and never listed it.
            TransportError: the API could not be reached; either no request
                reached it, or the parent was listed after the last one and holds
                no item of this name made by this call.
            ZomroError: any refusal of the create (bad name, unknown parent).
        """
        started = self._clock.monotonic()
        failures = conflicts = 0
        while True:
            try:
                doc = await self._api.call(self._func, self._fields, retry=False)
            except ConflictError:
                # The operation in the way may be our own earlier request that the
                # server held and ran late; else someone else's, waited out.
                made = await self._made_or_forget()
                if made is not None:
                    return made
                remaining = self._conflict_deadline - self._clock.monotonic()
                if remaining <= 0:
                    raise
                await self._clock.sleep(min(self._poll.delay(conflicts), remaining))
                conflicts += 1
                # The server said where it stands: the faults' budget starts afresh,
                # so that a long queue behind another snapshot does not spend it.
                started, failures = self._clock.monotonic(), 0
                continue
            except (AuthError, NotFoundError):
                raise
            except ApiError:
                # A refusal of a re-send (a limit, a duplicate) may be the work of
                # our earlier request that the server ran late: the listing tells.
                if self.may_have_acted and (made := await self._made_or_forget()) is not None:
                    return made
                raise
            except TransportError as exc:
                failures += 1
                if may_have_acted(exc):
                    self.may_have_acted = True
                    # A change whose result shows late (a rebuild's status) is
                    # watched that long, whatever the failure looked like; that
                    # wait is the server's, not a retry's: it is off the budget.
                    grace = grace_for(exc, self._grace)
                    looked_at = self._clock.monotonic()
                    made = await self._look_for(exc, max(grace, self._min_watch))
                    if made is not None:
                        return made
                    if not self._resend_unseen:
                        raise self._unknown(
                            "it was not listed within the watch, and may still appear", exc
                        ) from exc
                    spent = self._clock.monotonic() - looked_at
                    started += max(0.0, min(spent, self._min_watch) - grace)
                elif not self.may_have_acted:
                    await self._learn_others()
                wait = self._retry.wait_before(failures, exc)
                elapsed = self._clock.monotonic() - started
                if (
                    not is_retryable(exc)
                    or failures >= self._retry.attempts
                    or elapsed + wait > self._retry.give_up_after
                ):
                    raise
                await self._clock.sleep(wait)
                continue
            self.may_have_acted = self.accepted = True
            self.created_id = _document.created_id(doc)
            return await self._confirm()

    async def _made_or_forget(self) -> V | None:
        """Our late item if one of our requests may have acted; else learn who is there."""
        try:
            children = await self._list()
        except _UNTOLD as exc:
            if self.may_have_acted:
                raise self._unknown("the instance could not be listed", exc) from exc
            raise
        if self.may_have_acted:
            return self._ours(children)
        self.evidence.learn(children)
        return None

    async def _learn_others(self) -> None:
        # Nothing of ours reached the server yet: whatever is listed now is someone
        # else's, also an item of our name another process made meanwhile.
        with contextlib.suppress(TransportError):  # then `before` stays as it was
            await self._made_or_forget()

    def _ours(self, children: Sequence[V]) -> V | None:
        try:
            return self.evidence.find(children, accepted=self.accepted, created_id=self.created_id)
        except AmbiguousEvidence as exc:
            raise self._unknown(str(exc), None) from None

    async def _look_for(self, error: TransportError, grace: float) -> V | None:
        """The item the lost create made, watching for `grace` seconds: a server
        still holding an abandoned request may act late. Raises `OutcomeUnknown`
        when the parent could not be listed at all.
        """
        deadline = self._clock.monotonic() + grace
        step = 0
        checked = last_look = missed = False
        last_error: ZomroError = error
        while True:
            try:
                made = self._ours(await self._list())
                checked = True
            except _UNTOLD as exc:
                # Not seen yet; a failed listing proves nothing.
                made, last_error, missed = None, exc, True
            remaining = deadline - self._clock.monotonic()
            if made is not None:
                return made
            if remaining <= 0 and checked:
                if missed and not self.evidence.lasting:
                    # A sign that shows only for a while (a rebuild's status) may
                    # have come and gone while the listings failed.
                    raise self._unknown(
                        "the instance could not be listed throughout the watch, and "
                        "what would show it is passing",
                        last_error,
                    )
                return None
            if last_look:
                raise self._unknown(
                    "the API stopped answering before the instance could be listed", last_error
                )
            if remaining <= 0:
                last_look = True  # one more look past the grace: never give up unseen
                continue
            # A passing sign is looked for at the first poll delay throughout,
            # not on the growing schedule, which could step over it.
            delay = self._poll.delay(step if self.evidence.lasting else 0)
            await self._clock.sleep(min(delay, remaining))
            step += 1

    async def _confirm(self) -> V:
        """The accepted item, as soon as it is listed (within the grace)."""
        if not self._confirm_listed:
            try:
                listed = await self._list()
            except ZomroError as exc:
                raise self._unknown(
                    "the API accepted the change, then the listing after it failed", exc
                ) from exc
            made = self._ours(listed)
            if made is None:
                raise self._unknown("the API accepted the change but does not list it", None)
            return made
        deadline = self._clock.monotonic() + max(self._grace, self._poll.initial, self._min_watch)
        step = 0
        while True:
            try:
                listed = await self._list()
            except ZomroError as exc:
                raise self._unknown(
                    "the API accepted the create, then the listing that confirms it failed", exc
                ) from exc
            made = self._ours(listed)
            if made is not None:
                return made
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise self._unknown("the API accepted the create but does not list it", None)
            await self._clock.sleep(min(self._poll.delay(step), remaining))
            step += 1

    def _unknown(self, why: str, cause: BaseException | None) -> OutcomeUnknown:
        known = f" (id {self.created_id})" if self.created_id is not None else ""
        error = OutcomeUnknown(
            f"could not tell whether {self.evidence.describe}{known} was made: {why}; "
            "list before trying it again",
            instance_id=self.parent_id,
            name=self.evidence.label,
            resource_id=self.created_id,
            accepted=self.accepted,
        )
        error.__cause__ = cause
        return error
