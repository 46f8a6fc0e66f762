"""A nightly snapshot rotation, for cron: snapshot each instance, keep the newest N.

Configuration comes from the environment:

    ZOMRO_INSTANCES  instance ids, comma-separated (required), e.g. 5203773,5203774
    ZOMRO_KEEP       how many rotation snapshots to keep per instance, the new one
                     included (required, at least 1)
    ZOMRO_PREFIX     the name prefix that marks rotation snapshots (default "auto-");
                     snapshots without it are never touched
    ZOMRO_TOKEN, or ZOMRO_USERNAME and ZOMRO_PASSWORD, and ZOMRO_API_URL: the client's

It logs one line per instance to stdout and exits 0 when every instance rotated,
1 when any failed, and 2 when the configuration is wrong. A crontab line:

    15 3 * * * ZOMRO_INSTANCES=5203773,5203774 ZOMRO_KEEP=7 python nightly_rotation.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from zomro_async import RotationResult, ZomroClient

log = logging.getLogger("nightly_rotation")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


class ConfigError(ValueError):
    """The environment does not describe a rotation."""


def read_config(env: Mapping[str, str]) -> tuple[list[int], int, str]:
    """`(instance_ids, keep, prefix)` from the environment; `ConfigError` if unusable."""
    raw_ids = [part.strip() for part in env.get("ZOMRO_INSTANCES", "").split(",")]
    if not any(raw_ids):
        raise ConfigError("set ZOMRO_INSTANCES to comma-separated instance ids")
    ids: list[int] = []
    for part in filter(None, raw_ids):
        if not (part.isascii() and part.isdigit()) or int(part) == 0:
            raise ConfigError(f"ZOMRO_INSTANCES: {part!r} is not an instance id")
        if int(part) not in ids:
            ids.append(int(part))
    keep_text = env.get("ZOMRO_KEEP", "").strip()
    if not (keep_text.isascii() and keep_text.isdigit()) or int(keep_text) < 1:
        raise ConfigError("set ZOMRO_KEEP to how many snapshots to keep (at least 1)")
    prefix = env.get("ZOMRO_PREFIX", "auto-")
    if not prefix.strip():
        raise ConfigError("ZOMRO_PREFIX must not be blank")
    return ids, int(keep_text), prefix


def report(result: RotationResult) -> None:
    """Log one line for one instance's rotation."""
    deleted = ", ".join(str(s.id) for s in result.deleted) or "none"
    if result.ok and result.snapshot is not None:
        log.info(
            "instance %d: ok: new snapshot %d %r is Active; deleted: %s",
            result.instance_id,
            result.snapshot.id,
            result.snapshot.name,
            deleted,
        )
        return
    # The snapshot of a failed rotation, when there is one, is worth looking at.
    made = f" (snapshot {result.snapshot.id})" if result.snapshot is not None else ""
    log.error(
        "instance %d: FAILED%s: %s: %s; deleted: %s",
        result.instance_id,
        made,
        type(result.error).__name__,
        result.error,
        deleted,
    )


async def rotate(
    client: ZomroClient, instance_ids: Sequence[int], *, keep: int, prefix: str = "auto-"
) -> int:
    """Rotate every instance with `client`; the exit code: 0 if all went well, else 1."""
    results = await client.snapshots.rotate(instance_ids, keep=keep, prefix=prefix)
    for result in results:
        report(result)
    failed = sum(not r.ok for r in results)
    log.info("rotation done: %d ok, %d failed", len(results) - failed, failed)
    return EXIT_FAILED if failed else EXIT_OK


async def run(env: Mapping[str, str] | None = None, **client_settings: Any) -> int:
    """The whole job from the environment; `client_settings` go to the client."""
    env = os.environ if env is None else env
    try:
        instance_ids, keep, prefix = read_config(env)
        client = ZomroClient.from_env(env, **client_settings)
    except ValueError as exc:  # ConfigError, or missing or unsafe client settings
        log.error("configuration: %s", exc)
        return EXIT_CONFIG
    async with client:
        return await rotate(client, instance_ids, keep=keep, prefix=prefix)


def main() -> int:
    """The script: log to stdout, run once, return the exit code."""
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
