"""examples/bot_handler.py against the emulator: messages in order, then a summary."""

from __future__ import annotations

import asyncio

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks

from ._support import DOOMED_VM, OTHER_VM, VM, load_example

bot = load_example("bot_handler")


class Chat:
    """A `send` callback that records the messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def send(self, message: str) -> None:
        self.messages.append(message)

    def about(self, instance_id: int) -> list[str]:
        return [m for m in self.messages if m.startswith(f"{instance_id}:")]


async def test_one_instance_streams_started_saving_active_then_a_summary(
    zomro_emulator: ZomroEmulator, zomro_client: z.ZomroClient
) -> None:
    zomro_emulator.add_instance(VM)
    chat = Chat()
    await bot.handle_command(f"/snapshot {VM}", zomro_client, chat.send)

    snapshot_id = int(zomro_emulator.snapshots_of(VM)[0]["id"])
    assert chat.messages[0] == f"Taking snapshot of {VM}..."
    assert chat.messages[1].startswith(f"{VM}: snapshot {snapshot_id} 'bot-2026-01-01-")
    assert chat.messages[1].endswith("' started")
    assert chat.messages[2:] == [
        f"{VM}: snapshot {snapshot_id} is Saving",
        f"{VM}: snapshot {snapshot_id} is Active",
        "Done: 1 of 1 snapshots Active.",
    ]


async def test_several_instances_each_in_order_and_the_summary_names_failures(
    zomro_emulator: ZomroEmulator, zomro_client: z.ZomroClient
) -> None:
    zomro_emulator.add_instance(VM, time_to_active=5.0)
    zomro_emulator.add_instance(OTHER_VM, time_to_active=40.0)  # polled Saving several times
    zomro_emulator.add_instance(DOOMED_VM, kill=True)
    chat = Chat()
    await bot.handle_command(
        f"/snapshot {VM}, {OTHER_VM} {DOOMED_VM} {VM}", zomro_client, chat.send
    )

    assert chat.messages[0] == f"Taking snapshots of {VM}, {OTHER_VM}, {DOOMED_VM}..."
    for instance_id in (VM, OTHER_VM):
        steps = [m.split(" ", 3)[-1] for m in chat.about(instance_id)]
        assert steps == ["'bot-2026-01-01-000000' started", "is Saving", "is Active"]
    doomed = chat.about(DOOMED_VM)
    assert [m.split(" ", 3)[-1] for m in doomed[:2]] == [
        "'bot-2026-01-01-000000' started",
        "is Saving",
    ]
    assert doomed[2].startswith(f"{DOOMED_VM}: failed (SnapshotFailed: ")
    assert len(doomed) == 3
    # The quick instance finishes before the slow one is done.
    assert chat.messages.index(chat.about(VM)[-1]) < chat.messages.index(chat.about(OTHER_VM)[-1])
    assert (
        chat.messages[-1] == f"Done: 2 of 3 snapshots Active. Failed: {DOOMED_VM} (SnapshotFailed)"
    )
    assert len(chat.messages) == 1 + 3 + 3 + 3 + 1


async def test_an_unknown_instance_fails_in_the_summary(
    zomro_emulator: ZomroEmulator, zomro_client: z.ZomroClient
) -> None:
    zomro_emulator.add_instance(VM)
    chat = Chat()
    await bot.handle_command("/snapshot@backup_bot 42", zomro_client, chat.send)
    assert chat.messages[1].startswith("42: failed (NotFoundError: ")
    assert chat.messages[-1] == "Done: 0 of 1 snapshots Active. Failed: 42 (NotFoundError)"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "/snapshot",
        "/snapshots 5203773",
        "/snapshot abc",
        "/snapshot 0",
        "/snapshot -1",
        f"/snapshot {2**63}",
    ],
)
async def test_a_bad_command_gets_the_usage_and_sends_nothing(
    zomro_emulator: ZomroEmulator, zomro_client: z.ZomroClient, text: str
) -> None:
    chat = Chat()
    await bot.handle_command(text, zomro_client, chat.send)
    assert chat.messages == [bot.USAGE]
    assert sum(zomro_emulator.calls.values()) == 0


async def test_a_failing_send_cancels_the_job(
    zomro_emulator: ZomroEmulator, zomro_client: z.ZomroClient, zomro_clock: VirtualClock
) -> None:
    zomro_emulator.add_instance(VM, time_to_active=600.0)

    async def send(message: str) -> None:
        if "started" in message:
            raise ConnectionError("the chat went away")

    with pytest.raises(ConnectionError):
        await bot.handle_command(f"/snapshot {VM}", zomro_client, send)
    await zomro_clock.sleep(1.0)
    polls = zomro_emulator.calls["instances.snapshots"]
    await zomro_clock.sleep(300.0)
    await asyncio.sleep(0)
    assert zomro_emulator.calls["instances.snapshots"] == polls
    assert pending_sdk_tasks() == []
