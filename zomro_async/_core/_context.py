"""What every resource manager of one client shares: the session, the poller, the policies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .._checks import check_callback, check_timeout
from .._clock import Clock
from .._exceptions import TransportError, ZomroError
from ._locks import KeyedLocks
from ._poller import Item, Listing, Poller, PollPolicy, judge_active, judge_deleted
from ._reconcile import Evidence, Reconciler
from ._retry import RetryPolicy
from ._session import ApiSession, filters_cleared_anew

logger = logging.getLogger("zomro_async")

V = TypeVar("V")
ItemT = TypeVar("ItemT", bound=Item)


@attrs.frozen(kw_only=True)
class ResourceContext:
    """One client's shared machinery, handed to each of its resource managers.

    `conflict_timeout` bounds how long a change waits out an operation under
    way on its instance; `ambiguous_grace` how long a change whose answer was
    lost may still land on the server (the request timeout).
    """

    api: ApiSession
    poller: Poller
    locks: KeyedLocks
    clock: Clock
    poll: PollPolicy
    retry: RetryPolicy
    conflict_timeout: float
    ambiguous_grace: float


class ResourceManager:
    """The base of each `client.<resource>`: the client's shared machinery, by name."""

    def __init__(self, context: ResourceContext) -> None:
        self._api = context.api
        self._locks = context.locks
        self._clock = context.clock
        self._poll = context.poll
        self._retry = context.retry
        self._conflict_timeout = context.conflict_timeout
        self._grace = context.ambiguous_grace
        self.poller = context.poller

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._api!r})"

    def _reconciler(
        self,
        *,
        func: str,
        fields: Mapping[str, str],
        list_children: Callable[[], Awaitable[Sequence[V]]],
        parent_id: int,
        evidence: Evidence[V],
        conflict_deadline: float | None = None,
        **options: Any,
    ) -> Reconciler[V]:
        """A change sent through send-and-reconcile under this client's policies;
        the conflict deadline is `conflict_timeout` from now unless given."""
        if conflict_deadline is None:
            conflict_deadline = self._clock.monotonic() + self._conflict_timeout
        return Reconciler(
            self._api,
            func=func,
            fields=fields,
            list_children=list_children,
            parent_id=parent_id,
            evidence=evidence,
            clock=self._clock,
            retry=self._retry,
            poll=self._poll,
            grace=self._grace,
            conflict_deadline=conflict_deadline,
            **options,
        )

    def _await_active(
        self,
        listing: Listing[ItemT],
        item_id: int,
        timeout: float,
        on_update: Callable[[ItemT], object] | None,
    ) -> Coroutine[Any, Any, ItemT]:
        """The poller's wait for `item_id` of `listing` to be Active (checked timeout
        and callback), as the awaitable the caller gets (see `Poller.wait`)."""
        return self.poller.wait(
            listing,
            item_id,
            timeout=check_timeout(timeout),
            judge=judge_active,
            goal="Active",
            on_update=check_callback(on_update, "on_update"),
        )

    def _await_gone(
        self, listing: Listing[Any], item_id: int, timeout: float
    ) -> Coroutine[Any, Any, None]:
        """The poller's wait for `item_id` to be no longer listed (checked timeout)."""
        return self.poller.wait(
            listing, item_id, timeout=check_timeout(timeout), judge=judge_deleted, goal="deleted"
        )

    async def _delete(
        self,
        func: str,
        fields: Mapping[str, str],
        listing: Callable[[], Awaitable[Sequence[Item]]],
        item_id: int,
    ) -> None:
        """Send a delete, retried; one whose retries ran out is done all the same
        when `listing` shows the item gone or being deleted.

        A repeat that finds the item gone after an attempt whose answer was lost
        is a success (the lost attempt did it). While the item lingers as
        Deleting, though, each repeat is done again and may lose its answer
        again; then the listing (one that clears the stored filter itself), not
        the last answer, tells. A look that fails too says nothing: the delete's
        own error is raised.
        """
        try:
            await self._api.call(func, fields, done_if_gone=True)
        except TransportError as failed:
            try:
                # Absence proves the delete only in a listing that cleared the
                # stored filter itself: one saved meanwhile could hide the row.
                with filters_cleared_anew():
                    listed = await listing()
            except ZomroError:
                raise failed from failed.__cause__
            current = next((item for item in listed if item.id == item_id), None)
            if current is not None and not current.status.being_deleted:
                raise
            logger.debug("%s: every answer was lost, but the delete took hold", func)
