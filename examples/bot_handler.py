"""A chat-bot command handler: `/snapshot 5203773 5203774` streams progress to the chat.

`handle_command` needs no bot framework: give it the message text, a client and a
coroutine that sends one message. Plug it into any bot library's message handler:

    async def on_message(message):
        await handle_command(message.text, client, message.reply)

Run it once from a shell, printing the messages (a client from the environment):

    python examples/bot_handler.py "/snapshot 5203773"
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence

from zomro_async import BulkResult, ProgressEvent, ProgressKind, ZomroClient

USAGE = "usage: /snapshot <instance id> [<instance id> ...]"
NAME_TEMPLATE = "bot-{date}-{time}"

Send = Callable[[str], Awaitable[None]]


def parse_command(text: str) -> list[int] | None:
    """The instance ids of a `/snapshot` command (spaces or commas between them),
    without repeats; None when the text is not such a command.
    """
    words = text.replace(",", " ").split()
    if not words or words[0].split("@", 1)[0] != "/snapshot" or len(words) < 2:
        return None
    ids: list[int] = []
    for word in words[1:]:
        if not (word.isascii() and word.isdigit()) or not 0 < int(word) < 2**63:
            return None
        if int(word) not in ids:
            ids.append(int(word))
    return ids


def describe(event: ProgressEvent) -> str:
    """One chat line for a progress event."""
    who = f"{event.instance_id}:"
    snapshot = event.snapshot
    if event.kind is ProgressKind.FAILED:
        reason = f"{type(event.error).__name__}: {event.error}" if event.error else "unknown"
        return f"{who} failed ({reason})"
    assert snapshot is not None  # every other event of a create job carries its snapshot
    if event.kind is ProgressKind.CREATED:
        return f"{who} snapshot {snapshot.id} {snapshot.name!r} started"
    if event.kind is ProgressKind.SAVING:
        return f"{who} snapshot {snapshot.id} is {snapshot.status_text or 'in progress'}"
    return f"{who} snapshot {snapshot.id} is Active"


def summarise(results: Sequence[BulkResult]) -> str:
    """The closing message: how many are Active, and which failed."""
    ok = [r for r in results if r.ok]
    text = f"Done: {len(ok)} of {len(results)} snapshots Active."
    failed = [r for r in results if not r.ok]
    if failed:
        text += " Failed: " + ", ".join(
            f"{r.instance_id} ({type(r.error).__name__})" for r in failed
        )
    return text


async def handle_command(text: str, client: ZomroClient, send: Send) -> None:
    """Answer one chat message: snapshot the instances it names, streaming progress.

    A message that is not `/snapshot` with instance ids gets the usage line. Each
    instance's progress arrives in order (started, saving, Active or failed; the
    "saving" line once per instance, however often it is polled), then a summary.
    If `send` fails, the snapshots still running are cancelled and the error raised.
    """
    instance_ids = parse_command(text)
    if instance_ids is None:
        await send(USAGE)
        return
    job = client.snapshots.create_many(instance_ids, NAME_TEMPLATE)
    plural = "s" if len(instance_ids) > 1 else ""
    try:
        await send(f"Taking snapshot{plural} of {', '.join(map(str, instance_ids))}...")
        told_saving: set[int] = set()
        async for event in job:
            if event.kind is ProgressKind.SAVING:
                if event.instance_id in told_saving:
                    continue
                told_saving.add(event.instance_id)
            await send(describe(event))
        results = await job
    except BaseException:
        job.cancel()  # nobody is listening any more: stop polling for them
        raise
    await send(summarise(results))


async def _print(message: str) -> None:
    print(message)


async def run(text: str) -> None:
    """Handle one command with a client from the environment, printing the replies."""
    async with ZomroClient.from_env() as client:
        await handle_command(text, client, _print)


def main() -> int:
    """The script: the command is the first argument."""
    asyncio.run(run(" ".join(sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
