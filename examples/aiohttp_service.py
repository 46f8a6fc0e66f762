"""An aiohttp.web service that takes snapshots on request and reports on them.

    POST /snapshots/{instance_id}                start a snapshot; 202 with its id
         (optional JSON body: {"name": "before-upgrade"})
    GET  /snapshots/{instance_id}/{snapshot_id}  {"status": "pending" | "active" | "failed",
                                                  "error": null | "..."}

One `ZomroClient` serves every request: it is made when the app starts and closed
when the app stops, so every wait shares one poller and one request budget. Each
new snapshot is awaited until Active in a background task; the app keeps track of
those tasks and cancels the ones still running when it stops.

Run it (credentials from ZOMRO_TOKEN, or ZOMRO_USERNAME and ZOMRO_PASSWORD, and
ZOMRO_API_URL; `zomro-async emulator`, on port 8765, prints all three):

    python examples/aiohttp_service.py          # serves on http://127.0.0.1:8080
    curl -X POST http://127.0.0.1:8080/snapshots/5203773
    curl http://127.0.0.1:8080/snapshots/5203773/5204217   # the id the POST answered
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from zomro_async import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Snapshot,
    SnapshotStatus,
    WaitTimeout,
    ZomroClient,
    ZomroError,
)


@dataclasses.dataclass
class Job:
    """What the service knows of one snapshot it started."""

    instance_id: int
    snapshot_id: int
    name: str
    status: str = "pending"  # pending, active or failed
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SnapshotService:
    """The app's state: the shared client, the jobs it started, their wait tasks.

    Jobs live in memory, so they are lost on a restart; a snapshot the service does
    not know is looked up in the API instead. A real service would store its jobs
    and forget old ones.
    """

    def __init__(self, client: ZomroClient, *, wait_timeout: float = 3600.0) -> None:
        self.client = client
        self.wait_timeout = wait_timeout
        self.jobs: dict[tuple[int, int], Job] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, instance_id: int, name: str) -> Job:
        """Start a snapshot and await it in the background; the job is pending."""
        snapshot = await self.client.snapshots.create(instance_id, name)
        job = Job(instance_id=instance_id, snapshot_id=snapshot.id, name=snapshot.name)
        self.jobs[instance_id, snapshot.id] = job
        task = asyncio.create_task(self._await_active(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job

    async def _await_active(self, job: Job) -> None:
        try:
            await self.client.snapshots.wait_active(
                job.instance_id, job.snapshot_id, timeout=self.wait_timeout
            )
        except WaitTimeout as exc:
            # The snapshot may still turn Active later; this service's promise has run out.
            job.status, job.error = "failed", f"not Active within {self.wait_timeout:g} s: {exc}"
        except ZomroError as exc:
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            job.status = "active"

    async def status(self, instance_id: int, snapshot_id: int) -> Job:
        """The job for a snapshot; one this service did not start is asked of the API.

        Raises `NotFoundError` when the API does not list the snapshot.
        """
        job = self.jobs.get((instance_id, snapshot_id))
        if job is not None:
            return job
        return _job_from(await self.client.snapshots.get(instance_id, snapshot_id))

    async def close(self) -> None:
        """Cancel the waits still running, then close the client."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


def _job_from(snapshot: Snapshot) -> Job:
    job = Job(instance_id=snapshot.instance_id, snapshot_id=snapshot.id, name=snapshot.name)
    if snapshot.status is SnapshotStatus.ACTIVE:
        job.status = "active"
    elif not snapshot.status.in_progress:
        job.status, job.error = "failed", f"the snapshot is {snapshot.status_text or 'unknown'}"
    return job


SERVICE = web.AppKey("service", SnapshotService)
# aiohttp's own default; `zomro-async emulator` listens on another port (8765), so
# this service and an emulator to point it at both run with their defaults.
DEFAULT_PORT = 8080


def _id(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        raise web.HTTPBadRequest(text=f"{name} must be a positive integer")
    return int(text)


def _error_status(error: Exception) -> int:
    """The HTTP status that tells this service's caller what went wrong."""
    if isinstance(error, ValueError | TypeError | InvalidRequestError):
        return 400  # bad input, caught before sending or refused by the API
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    return 502  # the API failed us: network, credentials, an unreadable answer


def _default_name(client: ZomroClient) -> str:
    now = datetime.datetime.fromtimestamp(client.clock.time(), datetime.UTC)
    return now.strftime("api-%Y-%m-%d-%H%M%S")


async def start_snapshot(request: web.Request) -> web.Response:
    """POST /snapshots/{instance_id}: start a snapshot, 202 with the job."""
    service = request.app[SERVICE]
    instance_id = _id(request, "instance_id")
    body: Any = {}
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body must be JSON") from None
    name = body.get("name") if isinstance(body, dict) else None
    if name is None:
        name = _default_name(service.client)
    try:
        job = await service.start(instance_id, name)
    except (ValueError, TypeError, ZomroError) as exc:
        return web.json_response({"error": str(exc)}, status=_error_status(exc))
    location = f"/snapshots/{job.instance_id}/{job.snapshot_id}"
    return web.json_response(job.as_json(), status=202, headers={"Location": location})


async def snapshot_status(request: web.Request) -> web.Response:
    """GET /snapshots/{instance_id}/{snapshot_id}: pending, active or failed."""
    service = request.app[SERVICE]
    instance_id = _id(request, "instance_id")
    snapshot_id = _id(request, "snapshot_id")
    try:
        job = await service.status(instance_id, snapshot_id)
    except ZomroError as exc:
        return web.json_response({"error": str(exc)}, status=_error_status(exc))
    return web.json_response(job.as_json())


def create_app(
    make_client: Callable[[], ZomroClient], *, wait_timeout: float = 3600.0
) -> web.Application:
    """The app; `make_client` is called once, when the app starts."""
    app = web.Application()

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        service = SnapshotService(make_client(), wait_timeout=wait_timeout)
        app[SERVICE] = service
        try:
            yield
        finally:
            await service.close()

    app.cleanup_ctx.append(lifespan)
    app.router.add_post("/snapshots/{instance_id}", start_snapshot)
    app.router.add_get("/snapshots/{instance_id}/{snapshot_id}", snapshot_status)
    return app


def main() -> None:
    """Serve on HOST:PORT (default 127.0.0.1:8080) with a client from the environment."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", str(DEFAULT_PORT)))
    web.run_app(create_app(ZomroClient.from_env), host=host, port=port)


if __name__ == "__main__":
    main()
