"""The harness's OTA endpoint: ``POST <ota>`` (first ``ota_failures`` answers are HTTP 500, the
token comes only in the first good answer, activation until ``/activate`` said 200) and
``POST <ota>/activate`` (202 ``activation_pending`` times, then 200). Every request is recorded
with its headers in wire order."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from conformance.device.harness_config import OTA_PATH, WS_PATH, HarnessConfig
from conformance.device.records import HttpRecord


class OtaEndpoint:
    """Answers and records OTA requests; ``ws_port`` is set once the WebSocket port is known."""

    def __init__(self, cfg: HarnessConfig, http: list[HttpRecord]) -> None:
        self.cfg, self.http = cfg, http
        self.ws_port = 0
        self._activate_count = 0
        self._activated = False

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", OTA_PATH, self.ota)
        app.router.add_post(OTA_PATH + "activate", self.activate)

    def _record(self, request: web.Request, body: bytes) -> HttpRecord:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        rec = HttpRecord(time.monotonic(), request.method, request.path, headers, body)
        self.http.append(rec)
        return rec

    async def ota(self, request: web.Request) -> web.Response:
        rec = self._record(request, await request.read())
        posts = sum(1 for r in self.http if r.path == request.path)
        if posts <= self.cfg.ota_failures:
            rec.status = 500
            return web.Response(status=500, text="try again")
        answer: dict[str, Any] = {
            "server_time": {"timestamp": int(time.time() * 1000), "timezone_offset": 0},
            "firmware": {"version": "0.0.1", "url": ""},
            "websocket": {
                "url": f"ws://{request.url.host or '127.0.0.1'}:{self.ws_port}{WS_PATH}",
                "version": self.cfg.protocol_version,
            },
        }
        first_ok = not any(r.answer for r in self.http if r.path == request.path)
        if first_ok:  # the token comes once; later answers omit it (NVS must keep it)
            answer["websocket"]["token"] = self.cfg.token
        if self.cfg.activation and not self._activated:
            answer["activation"] = {"code": "123456", "message": "conformance", "challenge": "c-1"}
        rec.status, rec.answer = 200, answer
        return web.json_response(answer)

    async def activate(self, request: web.Request) -> web.Response:
        rec = self._record(request, await request.read())
        self._activate_count += 1
        if self._activate_count <= self.cfg.activation_pending:
            rec.status = 202
            return web.Response(status=202, text="{}", content_type="application/json")
        self._activated = True
        rec.status = 200
        return web.json_response({})
