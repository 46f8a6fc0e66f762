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
