"""What every resource manager of one client shares: the session, the poller, the policies."""

from __future__ import annotations

import attrs

from .._clock import Clock
from ._locks import KeyedLocks
from ._poller import Poller, PollPolicy
from ._retry import RetryPolicy
from ._session import ApiSession


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
