"""``GET /`` on the HTTP port: what this server is and the URLs it serves (HTML or JSON).

A person who opens ``http://HOST:8003/`` in a browser sees the OTA URL to enter on the board,
the WebSocket URL the board will be given, and where health and metrics live. With
``Accept: application/json`` the same facts come as JSON (scripts, the simulator).
"""

from __future__ import annotations

import html
from importlib import metadata
from typing import Any

from aiohttp import web

from server.config import Settings
from server.http.ota import request_hostname, websocket_url

DOCS_URL = "https://github.com/78/xiaozhi-esp32"
PAGES_NAV = (
    '<p>In the browser: <a href="/talk">Talk</a> · <a href="/transcribe">Transcribe live</a> · '
    '<a href="/transcribe-file">Transcribe a file</a> · <a href="/record">Record</a> · '
    '<a href="/dashboard">Dashboard</a> (server/http/pages.py).</p>\n'
)
"""Links to the browser pages (the microphone needs https, or localhost)."""


def server_version() -> str:
    """The installed package version (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return metadata.version("xiaozhi-py")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def endpoints(settings: Settings, request: web.Request, websocket_port: int) -> dict[str, Any]:
    """The URLs of this server as seen by the client of ``request``."""
    host = request_hostname(request)
    port = request.url.port or 80
    base = f"{'https' if settings.security.tls.enabled else 'http'}://{host}:{port}"
    ota = "/" + settings.ota.path.strip("/") + "/" if settings.ota.path.strip("/") else "/"
    return {
        "name": "xiaozhi-py server",
        "version": server_version(),
        "ota_url": base + ota,
        "activation_url": base + ota + "activate",
        "websocket_url": websocket_url(settings, request, websocket_port),
        "healthz_url": base + "/healthz",
        "metrics_url": base + "/metrics",
    }


_LABELS = (
    ("ota_url", "OTA/config URL (enter it on the board, Wi-Fi portal, advanced page)"),
    ("activation_url", "Activation (POST, used by the board)"),
    ("websocket_url", "WebSocket URL handed to boards"),
    ("healthz_url", "Health (JSON)"),
    ("metrics_url", "Prometheus metrics"),
)


def render_html(info: dict[str, Any]) -> str:
    """A small self-contained page listing :func:`endpoints`."""
    rows = "\n".join(
        f"<tr><th>{html.escape(label)}</th><td><code>{html.escape(str(info[key]))}</code></td></tr>"
        for key, label in _LABELS
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>xiaozhi-py server {html.escape(info['version'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
        "</style></head><body>\n"
        f"<h1>xiaozhi-py server {html.escape(info['version'])}</h1>\n"
        "<p>Offline voice-assistant server for xiaozhi-esp32 boards.</p>\n"
        f"<table>\n{rows}\n</table>\n{PAGES_NAV}"
        '<p>JSON: send <code>Accept: application/json</code>. Firmware: <a href="'
        f'{DOCS_URL}">xiaozhi-esp32</a>.</p>\n</body></html>\n'
    )


def wants_json(request: web.Request) -> bool:
    """``Accept`` prefers JSON over HTML (a browser sends ``text/html`` first)."""
    accept = request.headers.get("Accept", "").lower()
    if "application/json" not in accept:
        return False
    return "text/html" not in accept or accept.index("application/json") < accept.index("text/html")


def index_handler(settings: Settings, websocket_port: int) -> Any:
    """The aiohttp handler of ``GET /``."""

    async def index(request: web.Request) -> web.Response:
        info = endpoints(settings, request, websocket_port)
        if wants_json(request):
            return web.json_response(info)
        return web.Response(text=render_html(info), content_type="text/html")

    return index
