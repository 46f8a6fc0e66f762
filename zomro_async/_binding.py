"""A model bound to the client that returned it, so its methods can call the API."""

from __future__ import annotations

from typing import Generic, Self, TypeVar

import attrs

C = TypeVar("C")


class Bound(Generic[C]):
    """The binding half of a model: `bind()` and the client its methods call.

    The model (an attrs class) holds the client in a `_client` field that takes
    no part in equality or repr.
    """

    __slots__ = ()
    _client: C | None

    def bind(self, client: C) -> Self:
        """This model bound to a client's resource (`client.snapshots`, ...), so its
        methods can call the API.

        Returns:
            A bound copy; the model itself is unchanged (it is frozen).
        """
        return attrs.evolve(self, client=client)  # type: ignore[misc]

    def _bound(self) -> C:
        if self._client is None:
            raise RuntimeError(
                f"this {type(self).__name__} is not bound to a client; "
                "use the one a ZomroClient returned"
            )
        return self._client
