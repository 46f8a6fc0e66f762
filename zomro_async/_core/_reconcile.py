"""Create-and-reconcile: make one object whose create answer is undocumented, never two."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from .._clock import Clock
from .._exceptions import (
    AuthError,
    ConflictError,
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
    """What reconciling asks of a listed item: its id and its name."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


V = TypeVar("V", bound=Named)

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
    """One create of a named child of one parent, seen through to its listed result.

    The create's answer is undocumented (it may carry no id), so the listing is
    the proof: the result is the item of that name that was not listed before.
    A listed item counts as this call's only once one of this call's own
    requests may have reached the server; until then, every new item of that
    name is someone else's (another process creating the same name). After an
    ambiguous failure the listing is watched for `grace` seconds before the
    create is sent again; a failure that certainly had no effect (no connection
    was opened, a 429) is sent again after the backoff with no watch. Every
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
        name: str,
        before: set[int],
        what: str,
        clock: Clock,
        retry: RetryPolicy,
        poll: PollPolicy,
        grace: float,
        conflict_deadline: float,
    ) -> None:
        self._api = api
        self._func = func
        self._fields = fields
        self._list = list_children
        self.parent_id = parent_id
        self.name = name
        self.before = set(before)  # ids that are certainly not this call's
        self._what = what
        self._clock = clock
        self._retry = retry
        self._poll = poll
        self._grace = grace
        self._conflict_deadline = conflict_deadline
        self.may_have_acted = False  # one of our requests may have reached the server
        self.accepted = False  # the API answered the create with success
        self.created_id: int | None = None

    async def run(self) -> V:
        """Create, and return the item as listed.

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
            except TransportError as exc:
                failures += 1
                if may_have_acted(exc):
                    self.may_have_acted = True
                    made = await self._look_for(exc, grace_for(exc, self._grace))
                    if made is not None:
                        return made
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
        self.before.update(c.id for c in children)
        return None

    async def _learn_others(self) -> None:
        # Nothing of ours reached the server yet: whatever is listed now is someone
        # else's, also an item of our name another process made meanwhile.
        with contextlib.suppress(TransportError):  # then `before` stays as it was
            await self._made_or_forget()

    def _ours(self, children: Sequence[V]) -> V | None:
        fresh = [c for c in children if c.id not in self.before and c.name == self.name]
        # doc.id is undocumented: trust it to pick among candidates, not to exclude.
        by_id = [c for c in fresh if c.id == self.created_id]
        candidates = by_id or fresh
        # Another process's item of the same name can only follow ours (the API
        # takes one at a time), and ids grow: the first one is ours.
        return min(candidates, key=lambda c: c.id) if candidates else None

    async def _look_for(self, error: TransportError, grace: float) -> V | None:
        """The item the lost create made, watching for `grace` seconds: a server
        still holding an abandoned request may act late. Raises `OutcomeUnknown`
        when the parent could not be listed at all.
        """
        deadline = self._clock.monotonic() + grace
        step = 0
        checked = last_look = False
        last_error: ZomroError = error
        while True:
            try:
                made = self._ours(await self._list())
                checked = True
            except _UNTOLD as exc:
                made, last_error = None, exc  # not seen yet; a failed listing proves nothing
            remaining = deadline - self._clock.monotonic()
            if made is not None or (remaining <= 0 and checked):
                return made
            if last_look:
                raise self._unknown(
                    "the API stopped answering before the instance could be listed", last_error
                )
            if remaining <= 0:
                last_look = True  # one more look past the grace: never give up unseen
                continue
            await self._clock.sleep(min(self._poll.delay(step), remaining))
            step += 1

    async def _confirm(self) -> V:
        """The accepted item, as soon as it is listed (within the grace)."""
        deadline = self._clock.monotonic() + max(self._grace, self._poll.initial)
        step = 0
        while True:
            try:
                made = self._ours(await self._list())
            except ZomroError as exc:
                raise self._unknown(
                    "the API accepted the create, then the listing that confirms it failed", exc
                ) from exc
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
            f"could not tell whether the {self._what} {self.name!r}{known} of instance "
            f"{self.parent_id} was made: {why}; list the instance before creating it again",
            instance_id=self.parent_id,
            name=self.name,
            resource_id=self.created_id,
            accepted=self.accepted,
        )
        error.__cause__ = cause
        return error
