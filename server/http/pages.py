"""The browser pages on the HTTP port: Talk, Transcribe (live and file), Record, Dashboard.

Static HTML/CSS/JS in ``server/http/static/`` (no build step, nothing fetched from elsewhere at
run time: Opus goes through Chromium's WebCodecs). Routes:

* ``GET /talk``, ``/transcribe``, ``/transcribe-file``, ``/record``, ``/dashboard``: the pages;
* ``GET /static/…``: their scripts and styles;
* ``GET /api/pages``: what the scripts need to reach the WebSocket port (``ws_base`` such as
  ``ws://host:8000`` or ``wss://…`` with TLS), the assistant and OTA paths, whether recordings
  are on;
* ``GET /api/dashboard``: the dashboard's JSON (:mod:`server.http.dashboard`).

Microphones need a secure context: ``https://`` or ``localhost``; each page says so when opened
over plain ``http`` from another machine (the server's TLS support: ``xiaozhi-server cert``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from server.config import Settings
from server.devices import DeviceRegistry
from server.http.dashboard import dashboard_json
from server.http.ota import request_hostname
from server.metrics import ServerMetrics

STATIC_DIR: Final = Path(__file__).parent / "static"
PAGES: Final = {
    "/talk": "talk.html",
    "/transcribe": "transcribe.html",
    "/transcribe-file": "transcribe-file.html",
    "/record": "record.html",
    "/dashboard": "dashboard.html",
}
"""Route → file under :data:`STATIC_DIR`."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def pages_config(settings: Settings, request: web.Request, websocket_port: int) -> dict[str, Any]:
    """Where the pages' sockets go, as seen by the client of ``request``."""
    scheme = "wss" if settings.security.tls.enabled else "ws"
    return {
        "ws_base": f"{scheme}://{request_hostname(request)}:{websocket_port}",
        "assistant_path": settings.websocket.path,
        "ota_path": "/" + settings.ota.path.strip("/") + "/"
        if settings.ota.path.strip("/")
        else "/",
        "tls": settings.security.tls.enabled,
        "recordings": settings.transcribe.recordings.enabled,
        "transcribe": settings.transcribe.enabled,
    }


def _page(name: str) -> Handler:
    path = STATIC_DIR / name

    async def page(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return page


def add_page_routes(
    app: web.Application,
    settings: Settings,
    registry: DeviceRegistry,
    metrics: ServerMetrics,
    *,
    websocket_port: int,
    health: Callable[[], dict[str, Any]],
) -> None:
    """Register the pages, their static files and their two JSON endpoints on ``app``."""
    for route, name in PAGES.items():
        app.router.add_get(route, _page(name))
    app.router.add_static("/static/", STATIC_DIR, append_version=False)

    async def config(request: web.Request) -> web.Response:
        return web.json_response(pages_config(settings, request, websocket_port))

    async def dashboard(_request: web.Request) -> web.Response:
        return web.json_response(await dashboard_json(metrics, registry, health))

    app.router.add_get("/api/pages", config)
    app.router.add_get("/api/dashboard", dashboard)
