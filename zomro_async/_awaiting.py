"""Plain methods that return a wait, marked as the coroutine functions they stand for."""

from __future__ import annotations

import asyncio.coroutines
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def returns_a_wait(method: F) -> F:
    """Mark `method`, a plain def that returns an awaitable wait, as a coroutine
    function: `inspect.iscoroutinefunction` (3.12 on), `asyncio.iscoroutinefunction`
    and so `unittest.mock.create_autospec` treat it as the `async def` it was,
    and a mock of it is awaitable."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        return mark(method)  # type: ignore[no-any-return]
    # 3.11: the marker asyncio.iscoroutinefunction (which mock uses there) reads.
    setattr(method, "_is_coroutine", asyncio.coroutines._is_coroutine)  # type: ignore[attr-defined]  # noqa: B010
    return method
