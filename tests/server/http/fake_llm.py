"""A small OpenAI-compatible endpoint on loopback that a test can turn down and up again.

Speaks what :class:`~server.providers.dialogue.openai.OpenAIDialogue` needs: ``GET /v1/models``
and streamed (SSE) ``POST /v1/chat/completions``. ``mode`` picks the behaviour: ``ok`` answers
:data:`ANSWER`, ``error`` answers HTTP 500, ``stall`` sends nothing until :meth:`release`.
:meth:`FakeLlm.down` closes the port (connections are refused), :meth:`FakeLlm.up` listens on the
same port again.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

ANSWER = "The language model says hello."


class FakeLlm:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let stalled requests finish (with an HTTP 503)."""
        self._released.set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.authorizations.append(request.headers.get("Authorization"))
        if self.mode == "stall":
            await self._released.wait()
            return web.json_response({"error": {"message": "released"}}, status=503)
        if self.mode == "error":
            return web.json_response({"error": {"message": "model crashed"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ANSWER.split(" "):
            chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def up(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def down(self) -> None:
        self.release()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
