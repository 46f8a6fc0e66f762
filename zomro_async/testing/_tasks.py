"""Find tasks the SDK left running: for tests that assert a clean cancel or shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

_SDK_ROOT = str(Path(__file__).resolve().parent.parent)
_TESTING_ROOT = str(Path(__file__).resolve().parent)


def pending_sdk_tasks() -> list[asyncio.Task[object]]:
    """The running loop's unfinished tasks whose coroutine is zomro_async's own.

    The client's tasks count, the emulator's do not: after a cancelled job or a
    closed client there should be none.

    Returns:
        The tasks, for an assertion such as `assert pending_sdk_tasks() == []`.
    """
    pending = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = getattr(code, "co_filename", "")
        if (
            not task.done()
            and filename.startswith(_SDK_ROOT)
            and not filename.startswith(_TESTING_ROOT)
        ):
            pending.append(task)
    return pending
