"""The shared poller: one listing per parent per tick serves every waiter on it, any resource."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import random
from collections.abc import Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from .._clock import Clock
from .._exceptions import NotFoundError, SnapshotFailed, WaitTimeout, ZomroError, fresh_copy
from ._retry import is_retryable
from ._session import context_clearing_anew

T = TypeVar("T")
logger = logging.getLogger("zomro_async")


class Status(Protocol):
    """What the judges ask of an item's state."""

    @property
    def value(self) -> str: ...
    @property
    def failed(self) -> bool: ...
    @property
    def in_progress(self) -> bool: ...
    @property
    def being_deleted(self) -> bool: ...


class Item(Protocol):
    """What the poller asks of a listed item: an id and a state."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> Any: ...  # a Status; Any so that each model keeps its own enum
    @property
    def status_text(self) -> str: ...


V = TypeVar("V", bound=Item)

OnUpdate = Callable[[V], object]


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How waits poll: at once, then `initial` seconds growing by `multiplier` up
    to `maximum`, each delay stretched by up to `jitter` (a fraction) at random.
    The last listing of a wait starts `final_lead` seconds before its deadline
    (at most half the timeout), so that its answer lands in time.
    """

    initial: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=1.5, validator=attrs.validators.ge(1))
    maximum: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    final_lead: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))

    def delay(self, step: int) -> float:
        """The pause before poll number `step + 2` (step 0: the pause after the first).

        Args:
            step: how many pauses came before this one.

        Returns:
            Seconds, jittered.
        """
        base = min(self.maximum, self.initial * self.multiplier ** min(step, 64))
        return base * (1 + random.uniform(0, self.jitter))


@attrs.frozen
class Listing(Generic[V]):
    """What one watch lists: `fetch()` calls `func` for the children of `parent`.

    Listings with the same `func` and `parent` share one watch, whoever asks;
    `what` and `parent_what` name an item and its parent in messages.
    """

    func: str
    parent: int
    fetch: Callable[[], Coroutine[Any, Any, Sequence[V]]] = attrs.field(eq=False, hash=False)
    what: str = attrs.field(default="snapshot", eq=False, hash=False)
    parent_what: str = attrs.field(default="instance", eq=False, hash=False)
    # The error of an item that failed or vanished, from a message and its last state.
    failure: Callable[[str, Any], ZomroError] = attrs.field(
        default=lambda message, item: SnapshotFailed(message, snapshot=item),
        eq=False,
        hash=False,
    )

    @property
    def owner(self) -> str:
        """The parent as messages name it: "instance 5203773", or "the account"."""
        return (
            "the account" if self.parent_what == "account" else f"{self.parent_what} {self.parent}"
        )

    @property
    def key(self) -> tuple[str, int]:
        return (self.func, self.parent)


# Judges one observation of the awaited item `item_id` of `listing` (current:
# None when not listed) given the last one seen and when (on the clock) the
# listing that shows it started: returns (True, value) when the wait is over,
# (False, None) to go on, or raises to fail the wait. A plain function, shared
# by every wait, where it can be: an object per wait is one more for the
# garbage collector when ten thousand waits are under way.
Judge = Callable[[Listing[V], int, V | None, V | None, float], tuple[bool, T]]


# -- the judges -------------------------------------------------------------------


def judge_active(
    listing: Listing[V], item_id: int, current: V | None, last: V | None, listed_at: float
) -> tuple[bool, V]:
    """Done when the item is Active; fails on a failed state, a delete, or absence."""
    if current is None:
        if last is None:
            raise NotFoundError(
                f"{listing.owner} has no {listing.what} {item_id}",
                type="missed",
                object="elid",
                func=listing.func,
            )
        raise listing.failure(
            f"{listing.what} {item_id} of {listing.owner} disappeared while awaited", last
        )
    status = current.status
    if status.value == "active":
        return True, current
    if status.failed or status.being_deleted:
        raise listing.failure(
            f"{listing.what} {current.id} of {listing.owner} "
            f"is {current.status_text or status.value}",
            current,
        )
    return False, current


def judge_settled(
    listing: Listing[Any], item_id: int, current: Item | None, last: Item | None, listed_at: float
) -> tuple[bool, None]:
    """Done when the item is gone or no longer in progress."""
    return current is None or not current.status.in_progress, None


def judge_deleted(
    listing: Listing[Any], item_id: int, current: Item | None, last: Item | None, listed_at: float
) -> tuple[bool, None]:
    """Done when the item is no longer listed."""
    return current is None, None


# -- waiting ----------------------------------------------------------------------


class _Waiter(asyncio.Future[T], Coroutine[Any, Any, T]):
    """One wait on a watch, and what its caller awaits: its deadline, its judge
    and the last state seen.

    One object, with no coroutine of its own: ten thousand waits under way are
    that many fewer objects for the garbage collector to walk, and `gather()`
    of ten thousand of them makes no task for any. It is a future, so `await`,
    `gather`, `wait_for` and `shield` take it as it is; and it speaks the
    coroutine protocol, so `create_task`, a `TaskGroup` and `asyncio.run` do
    too. The poller settles it; a waiter the caller cancels (its task was
    cancelled, or a timeout of its own) leaves the watch at once, so that the
    last one to go ends the watch's loop and the listing in flight.
    """

    __slots__ = (
        "checked",
        "deadline",
        "final_at",
        "goal",
        "item_id",
        "judge",
        "last",
        "last_error",
        "listing",
        "on_update",
        "once",
        "poller",
        "watch",
    )

    def __init__(
        self,
        poller: Poller,
        watch: _Watch,
        item_id: int,
        deadline: float,
        final_at: float,
        judge: Judge[Any, Any],
        goal: str,
        on_update: OnUpdate[Any] | None,
        *,
        once: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(loop=loop)
        self.poller = poller
        self.watch = watch
        self.listing = watch.listing
        self.item_id = item_id
        self.deadline = deadline
        self.final_at = final_at
        self.judge = judge
        self.goal = goal
        self.on_update = on_update
        self.last: Any = None
        self.last_error: BaseException | None = None
        # timeout=0: one check, awaited however long its listing takes.
        self.once = once
        self.checked = False

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the wait, and leave the watch."""
        if not super().cancel(msg):
            return False
        self.poller._leave(self.watch, self)
        return True

    # -- the coroutine protocol, for a task that drives the wait (`create_task`) --
    # Stateless, as the future's own `await` is, so that any number of tasks may
    # drive one wait, before or after it ends.

    def send(self, value: None, /) -> Any:
        """Step the wait as a coroutine: the wait itself while it lasts (the task
        awaits it), then its outcome."""
        if not self.done():
            self._asyncio_future_blocking = True
            return self
        raise StopIteration(self.result())

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        """Give the wait up, as a task does that was cancelled before its first
        step: it leaves the watch, and the error is raised."""
        self.cancel()
        if isinstance(typ, BaseException):
            raise typ
        raise val if isinstance(val, BaseException) else typ() if val is None else typ(val)

    def close(self) -> None:
        """Drop the wait as a coroutine is dropped unstarted (a task group that
        refuses it, say): it leaves the watch."""
        self.cancel()

    def due(self, now: float) -> bool:
        """Whether the deadline has come (a one-check wait: once it was checked)."""
        return now >= self.deadline and (self.checked or not self.once)

    def offer(
        self, items: Mapping[int, Item], fresh: bool, listed_at: float, proves_absence: bool
    ) -> bool:
        """Judge one listing; True when the waiter needs a listing that proves
        absence, at once.

        Only a listing that started after this waiter joined (`fresh`) and
        cleared the stored list filter itself (`proves_absence`) can show that
        the item is not there; any listing proves presence.
        """
        if self.done():
            return False
        current = items.get(self.item_id)
        if current is None and not (fresh and proves_absence):
            return True
        self.checked = True
        try:
            done, value = self.judge(self.listing, self.item_id, current, self.last, listed_at)
        except Exception as exc:
            self.set_exception(exc)
            return False
        if current is not None:
            self.last = current
        self.last_error = None
        if done:
            self.set_result(value)
        elif current is not None and self.on_update is not None:
            _call_hook(self.on_update, current, self.item_id)
        return False

    def expire(self) -> None:
        last = self.last
        state = (last.status_text or last.status.value) if last else "never seen"
        error = WaitTimeout(
            f"{self.listing.what} {self.item_id} was not {self.goal} by the deadline "
            f"(last status {state!r})",
            last=last,
        )
        if self.last_error is not None:
            error.__cause__ = self.last_error  # the outage that kept it from an answer
        self.set_exception(error)


def _call_hook(hook: OnUpdate[Any], item: Item, item_id: int) -> None:
    try:
        result = hook(item)
    except Exception:
        # The caller's hook must not break the loop that serves every waiter.
        logger.exception("on_update callback failed for %d", item_id)
        return
    if asyncio.iscoroutine(result):
        result.close()
        logger.error("on_update returned a coroutine, which is never awaited: pass a function")


class _Watch:
    """The polling schedule of one listing and the waiters it serves."""

    def __init__(self, listing: Listing[Any]) -> None:
        self.listing = listing
        self.waiters: list[_Waiter[Any]] = []
        self.task: asyncio.Task[None] | None = None
        self.round: asyncio.Task[Sequence[Item]] | None = None
        self.wake: asyncio.Future[None] | None = None
        self.recheck = False  # a rider needs a fresh listing at once
        # The next listing must prove absence: one clears the stored filter itself.
        self.prove_absence = False
        self.step = 0
        self.round_started = 0.0  # when the listing in flight (or the last one) started
        self.context = contextvars.Context()  # the wake-up callbacks read no variable
        # The last finished listing by id, made once for all the waiters it serves.
        self._indexed: tuple[asyncio.Task[Sequence[Item]] | None, dict[int, Item]] = (None, {})

    def wake_up(self, _: object = None) -> None:
        """End the watch's pause now: a newcomer is to be checked."""
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    def index(self, round_: asyncio.Task[Sequence[Item]]) -> dict[int, Item]:
        """The items of a finished listing by id (the first of an id wins)."""
        task, by_id = self._indexed
        if task is not round_:
            by_id = {}
            for item in round_.result():
                by_id.setdefault(item.id, item)
            self._indexed = (round_, by_id)
        return by_id


class _Turns:
    """At most `size` listings of the poller in flight at once (None: no limit);
    the other watches wait in line, each holding one future rather than a
    listing's task and the calls it has queued for the client's budget."""

    def __init__(self, size: int | None) -> None:
        self._free = size
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()

    def take(self) -> bool:
        """Take a turn now, if one is free and no watch is waiting for one."""
        if self._free is None:
            return True
        if self._free > 0 and not self._line:
            self._free -= 1
            return True
        return False

    def join_line(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A place in line: done once the turn is this watch's."""
        turn: asyncio.Future[None] = loop.create_future()
        self._line.append(turn)
        return turn

    def leave_line(self, turn: asyncio.Future[None]) -> None:
        """Give up a place in line; a turn handed over meanwhile goes to the next."""
        if turn.done():
            if not turn.cancelled():
                self.give_back()
        else:
            turn.cancel()  # passed over by give_back()

    def round_ended(self, round_: asyncio.Task[Sequence[Item]]) -> None:
        """A listing's done callback: its outcome is read, its turn given back."""
        _consume(round_)
        self.give_back()

    def give_back(self) -> None:
        """A listing ended: its turn goes to the first watch in line, or is free."""
        if self._free is None:
            return
        while self._line:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


class Poller:
    """Every wait on a client joins this poller, for every resource.

    Per listing (a list function and a parent id), one loop lists and hands the
    listing to every waiter on it, whichever task awaits. A new waiter is
    checked at once (or rides on a listing already in flight), then follows the
    listing's backoff schedule. A listing that fails transiently does not end a
    wait: it polls on until its deadline. Each deadline is hard: a waiter is
    failed at it even while a listing is still in flight. When the last waiter
    leaves, the loop ends.
    """

    def __init__(self, *, clock: Clock, poll: PollPolicy, max_rounds: int | None = None) -> None:
        self._clock = clock
        self._poll = poll
        # No more listings started than the client sends at once: the rest
        # would only queue for its budget, each a task and its calls. One line
        # per event loop, as the client's budget is: a loop that ended with a
        # listing in flight never gives its turn back.
        self._max_rounds = max_rounds
        self._turns_loop: asyncio.AbstractEventLoop | None = None
        self._turns = _Turns(max_rounds)
        self._watches: dict[Hashable, _Watch] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self.list_calls = 0

    @property
    def watched(self) -> int:
        """How many listings are being polled now."""
        return len(self._watches)

    def wait(
        self,
        listing: Listing[V],
        item_id: int,
        *,
        timeout: float,
        judge: Judge[V, T],
        goal: str,
        on_update: OnUpdate[V] | None = None,
    ) -> Coroutine[Any, Any, T]:
        """Join the watch of `listing` for `item_id`: the wait, a future that is
        also a coroutine (see `_Waiter`), settled with the wait's outcome.

        The wait is checked at once (or rides on the listing in flight), then on
        the watch's schedule, until `judge` ends it or the deadline fails it with
        `WaitTimeout`. Cancelling the future (or the task awaiting it) ends the
        wait; the watch's loop ends with its last wait. Called with no event loop
        running (`asyncio.run(client.snapshots.wait_active(...))`), it returns a
        plain coroutine that joins the watch once it runs.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._wait_once_running(listing, item_id, timeout, judge, goal, on_update)
        now = self._clock.monotonic()
        final_at = now + timeout - min(self._poll.final_lead, timeout / 2)
        watch = self._watches.get(listing.key)
        # A watch whose loop ended, or that runs on another event loop (one no
        # longer running, say), cannot serve this wait: it gets its own.
        if watch is None or not _polls_on(watch, loop):
            watch = self._watches[listing.key] = _Watch(listing)
        waiter: _Waiter[T] = _Waiter(
            self,
            watch,
            item_id,
            now + timeout,
            final_at,
            judge,
            goal,
            on_update,
            once=timeout <= 0,
            loop=loop,
        )
        watch.waiters.append(waiter)
        if watch.round is not None:
            started = watch.round_started
            watch.round.add_done_callback(
                functools.partial(self._ride, watch, waiter, started=started)
            )
        else:
            watch.wake_up()  # check the newcomer now, not at the next tick
        if watch.task is None:
            watch.task = loop.create_task(self._run(watch))
        return waiter

    async def _wait_once_running(
        self,
        listing: Listing[V],
        item_id: int,
        timeout: float,
        judge: Judge[V, T],
        goal: str,
        on_update: OnUpdate[V] | None,
    ) -> T:
        return await self.wait(
            listing, item_id, timeout=timeout, judge=judge, goal=goal, on_update=on_update
        )

    def _ride(
        self,
        watch: _Watch,
        waiter: _Waiter[Any],
        round_: asyncio.Task[Sequence[Item]],
        started: float,
    ) -> None:
        if round_.cancelled() or waiter.done() or round_.exception() is not None:
            return  # the loop deals with a failed round for every waiter
        if waiter.offer(watch.index(round_), fresh=False, listed_at=started, proves_absence=False):
            # Absent from an older listing: look again now.
            watch.recheck = watch.prove_absence = True
            watch.wake_up()

    def _leave(self, watch: _Watch, waiter: _Waiter[Any]) -> None:
        """A cancelled wait leaves; the last one to go stops the watch's loop."""
        with contextlib.suppress(ValueError):
            watch.waiters.remove(waiter)
        if not all(w.done() for w in watch.waiters):
            return
        task = watch.task
        # A wait may be cancelled with no loop running (asyncio.run's clean-up).
        if (
            task is not None
            and not task.done()
            and task is not asyncio.current_task(task.get_loop())
        ):
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        if self._watches.get(watch.listing.key) is watch:
            del self._watches[watch.listing.key]

    async def close(self) -> None:
        """Stop every loop and wait for it to end; waiters still waiting fail
        with a `ZomroError`.
        """
        loops = set(self._stopping)
        for watch in list(self._watches.values()):
            if watch.task is not None:
                watch.task.cancel()
                loops.add(watch.task)
            for waiter in watch.waiters:
                if not waiter.done():
                    waiter.set_exception(ZomroError("the client was closed"))
        self._watches.clear()
        await asyncio.gather(*loops, return_exceptions=True)

    async def _run(self, watch: _Watch) -> None:
        loop = asyncio.get_running_loop()
        round_: asyncio.Task[Sequence[Item]] | None = None
        try:
            while True:
                pending = self._pending(watch)
                if not pending:
                    break
                pending = await self._take_turn(watch, pending)
                if not pending:
                    break
                self.list_calls += 1
                served = pending
                watch.round_started = self._clock.monotonic()
                proves_absence, watch.prove_absence = watch.prove_absence, False
                # Run in a context of its own that says whether to clear anew: the
                # round serves every waiter, not the one that began the watch.
                try:
                    round_ = watch.round = loop.create_task(
                        _fetched(watch.listing), context=context_clearing_anew(proves_absence)
                    )
                except BaseException:
                    self._turns.give_back()
                    raise
                # The turn goes back when the listing has ended, however it ends:
                # a listing cancelled is still in flight until it winds down.
                round_.add_done_callback(self._turns.round_ended)
                try:
                    # A deadline that comes while the listing is in flight fails its
                    # waiter then; the listing goes on for the others.
                    while not round_.done() and pending:
                        await self._pause(watch, self._until_deadline(pending), round_)
                        pending = self._pending(watch)
                    if not round_.done():
                        # Every waiter it was for is gone; one may have joined
                        # meanwhile: the top of the loop decides.
                        round_.cancel()
                        await asyncio.wait({round_})
                        continue
                finally:
                    watch.round = None
                if _interrupted(round_):
                    # KeyboardInterrupt, SystemExit: it left the event loop already,
                    # through the listing's task; whoever runs the loop ends it all.
                    return
                recheck = self._judge_round(watch, round_, served, proves_absence) or watch.recheck
                watch.recheck = False
                pending = self._pending(watch)
                if not pending:
                    break
                delay = 0.0 if recheck else self._poll.delay(watch.step)
                watch.step += 1
                now = self._clock.monotonic()
                # Sleep no later than the next final check, nor past a deadline.
                upcoming = min(
                    min(w.final_at if w.final_at > now else w.deadline for w in pending) - now,
                    delay,
                )
                await self._pause(watch, max(0.0, upcoming))
        finally:
            if round_ is not None and not round_.done():
                round_.cancel()  # the loop was cancelled mid-listing: so is the listing
            watch.task = None
            # Every wait was settled (or left), unless the loop ended otherwise (a
            # bug, an interrupt): a wait it leaves is failed, never left hanging.
            # Then the watch goes, and with it what its waiters hold.
            for waiter in watch.waiters:
                if not waiter.done():
                    waiter.set_exception(ZomroError("the polling of this wait stopped"))
            watch.waiters = []
            if self._watches.get(watch.listing.key) is watch:
                del self._watches[watch.listing.key]

    async def _take_turn(self, watch: _Watch, pending: list[_Waiter[Any]]) -> list[_Waiter[Any]]:
        """Wait, while the poller has all its listings in flight, for one to end
        (failing waiters whose deadline comes meanwhile); the waits still pending
        then, for which the turn is taken (none: no one is left to list for)."""
        loop = asyncio.get_running_loop()
        if self._turns_loop is not loop:
            self._turns_loop, self._turns = loop, _Turns(self._max_rounds)
        turns = self._turns
        if turns.take():
            return pending
        turn = turns.join_line(loop)
        try:
            while not turn.done() and pending:
                await self._pause(watch, self._until_deadline(pending), turn)
                pending = self._pending(watch)
        except BaseException:
            turns.leave_line(turn)
            raise
        if not pending:
            turns.leave_line(turn)
        return pending

    def _pending(self, watch: _Watch) -> list[_Waiter[Any]]:
        """The watch's waits still waiting, after failing those whose deadline came;
        the watch keeps only these (a settled wait has left)."""
        now = self._clock.monotonic()
        pending = []
        for waiter in watch.waiters:
            if waiter.done():
                continue
            if waiter.due(now):
                waiter.expire()
            else:
                pending.append(waiter)
        watch.waiters = pending[:]
        return pending

    def _until_deadline(self, pending: list[_Waiter[Any]]) -> float | None:
        """Seconds to the earliest deadline that can fail a waiter during this round."""
        deadlines = [w.deadline for w in pending if not w.once or w.checked]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self._clock.monotonic())

    def _judge_round(
        self,
        watch: _Watch,
        round_: asyncio.Task[Sequence[Item]],
        served: list[_Waiter[Any]],
        proves_absence: bool,
    ) -> bool:
        """Hand a finished listing to the waiters it was made for (riders had theirs);
        True when one needs a look at once.
        """
        if round_.cancelled():
            return True
        error = round_.exception()
        if error is None:
            recheck = False
            items = watch.index(round_)
            for waiter in served:
                recheck |= waiter.offer(
                    items, fresh=True, listed_at=watch.round_started, proves_absence=proves_absence
                )
            if recheck:
                # A stored filter saved since the last clear could hide a row:
                # absence counts only in a listing that cleared it itself.
                watch.prove_absence = True
            return recheck
        waiting = [w for w in watch.waiters if not w.done()]
        if is_retryable(error):
            # An outage (after the call's own retries): keep polling until the deadline.
            logger.debug("a listing failed (%s): waits go on polling", type(error).__name__)
            for waiter in waiting:
                waiter.last_error = error
                waiter.checked = True
            return False
        for waiter in waiting:
            waiter.set_exception(fresh_copy(error))
        return False

    async def _pause(
        self,
        watch: _Watch,
        seconds: float | None,
        also: asyncio.Future[Any] | None = None,
    ) -> None:
        """Sleep `seconds` (None: no limit), or less when woken or `also` ends."""
        if also is not None and also.done():
            return
        loop = asyncio.get_running_loop()
        wake = watch.wake = loop.create_future()
        # Each a done callback that wakes this pause (and no later one: a callback
        # already queued when the pause ends cannot be taken back), run in the
        # watch's own empty context: no asyncio.wait() and its set, closure and
        # context copies, a dozen objects a watch while ten thousand waits poll.
        wake_up = functools.partial(_end_pause, wake)
        sleeper = loop.create_task(self._clock.sleep(seconds)) if seconds is not None else None
        for future in (also, sleeper):
            if future is not None:
                future.add_done_callback(wake_up, context=watch.context)
        try:
            await wake
        finally:
            watch.wake = None
            if also is not None:
                also.remove_done_callback(wake_up)
            if sleeper is not None:
                sleeper.remove_done_callback(wake_up)
                if not sleeper.done():
                    sleeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sleeper


def _interrupted(round_: asyncio.Task[Sequence[Item]]) -> bool:
    if round_.cancelled():
        return False
    error = round_.exception()
    return error is not None and not isinstance(error, Exception)


async def _fetched(listing: Listing[Any]) -> Sequence[Item]:
    # In the listing's own task, so that even a fetch() that fails before its
    # first await is that listing's outcome, judged as any other.
    return await listing.fetch()


def _polls_on(watch: _Watch, loop: asyncio.AbstractEventLoop) -> bool:
    task = watch.task
    return task is not None and not task.done() and task.get_loop() is loop


def _end_pause(wake: asyncio.Future[None], _: object) -> None:
    if not wake.done():
        wake.set_result(None)


def _consume(round_: asyncio.Task[Sequence[Item]]) -> None:
    # A round cut short by a close still ends in an outcome: read it, so that
    # asyncio does not report it as never retrieved.
    if not round_.cancelled():
        round_.exception()
