"""Form posts to the emulator as Zomro's panel sends them, shared by the emulator's tests."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from zomro_async.testing import ZomroEmulator


class PanelApi:
    """Authorised urlencoded form posts to the emulator, as Zomro's panel sends them."""

    def __init__(self, emu: ZomroEmulator, http: aiohttp.ClientSession) -> None:
        self.emu, self.http = emu, http

    def form(self, func: str, **fields: Any) -> dict[str, str]:
        sent = {"func": func, "auth": self.emu.token, "out": "json", "lang": "en"}
        sent.update({k: str(v) for k, v in fields.items() if v is not None})
        return sent

    async def post(self, func: str, **fields: Any) -> tuple[int, str]:
        async with self.http.post(self.emu.url, data=self.form(func, **fields)) as resp:
            return resp.status, await resp.text()

    async def call(self, func: str, **fields: Any) -> dict[str, Any]:
        """`doc` of a JSON call; fields given as None are left out."""
        status, text = await self.post(func, **fields)
        assert status == 200
        doc: dict[str, Any] = json.loads(text)["doc"]
        return doc

    async def error_node(self, func: str, **fields: Any) -> dict[str, Any]:
        """The `doc.error` of a call that must be refused, checked for its shape."""
        error: dict[str, Any] = (await self.call(func, **fields))["error"]
        assert error["$lang"] == "en"
        assert set(error["msg"]) == {"$"}
        assert set(error["detail"]) == {"$"}
        return error

    async def error(self, func: str, **fields: Any) -> tuple[str, str]:
        """`$type` and `$object` of a call that must be refused."""
        error = await self.error_node(func, **fields)
        return error["$type"], error["$object"]
