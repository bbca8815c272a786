"""The HTTP side of the server: OTA/config, activation, ``GET /``, ``/healthz`` and ``/metrics``.

Requests are logged by :class:`QuietAccessLogger`: at INFO, except the periodic ``/metrics`` and
``/healthz`` polls, which are logged at DEBUG (a Prometheus scrape every 15 s would drown the
log). ``/healthz`` answers 200 with ``status`` ``ok`` or ``degraded`` (a provider is failing and
the server answers with a fallback), 503 when the health callable itself fails.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.config import Settings
from server.devices import DeviceRegistry
from server.http.index import index_handler
from server.http.ota import MqttOffer, OtaHandlers
from server.http.pages import add_page_routes
from server.http.recordings import add_recording_routes
from server.metrics import CONTENT_TYPE, ServerMetrics
from server.security.auth import DeviceTokens

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this are not read (a real board sends about 2 KiB)."""
POLLED_PATHS = frozenset({"/metrics", "/healthz"})
"""Logged at DEBUG: monitoring polls them all the time."""


class QuietAccessLogger(AbstractAccessLogger):
    """One line per request: ``GET /xiaozhi/ota/ 200 from 1.2.3.4 in 1.2 ms``; polls at DEBUG."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        level = logging.DEBUG if request.path in POLLED_PATHS else logging.INFO
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level,
                "%s %s %d from %s in %.1f ms",
                request.method,
                request.path,
                response.status,
                request.remote,
                time * 1000,
            )


def ota_routes(ota_path: str) -> tuple[list[str], list[str]]:
    """``(ota paths, activate paths)``, with and without trailing slash (boards use either)."""
    base = "/" + ota_path.strip("/") if ota_path.strip("/") else ""
    ota = [base or "/"] + ([base + "/"] if base else [])
    return ota, [base + "/activate", base + "/activate/"]


def create_http_app(
    settings: Settings,
    registry: DeviceRegistry,
    metrics: ServerMetrics,
    *,
    websocket_port: int,
    health: Callable[[], dict[str, Any]],
    mqtt_offer: MqttOffer | None = None,
    device_tokens: DeviceTokens | None = None,
) -> web.Application:
    """Build the aiohttp app. Raises ``ValueError`` for a non-hex ``ota.hmac_keys`` entry."""
    handlers = OtaHandlers(settings, registry, metrics, websocket_port, mqtt_offer, device_tokens)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    ota_paths, activate_paths = ota_routes(settings.ota.path)
    for path in ota_paths:
        app.router.add_route("POST", path, handlers.ota)
        app.router.add_route("GET", path, handlers.ota)
    for path in activate_paths:
        app.router.add_route("POST", path, handlers.activate)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            return web.json_response(health())
        except Exception as exc:
            logger.exception("health callable failed")
            return web.json_response({"status": "error", "error": str(exc)}, status=503)

    async def metrics_view(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    add_recording_routes(app, settings)  # /recordings (server/http/recordings.py)
    add_page_routes(app, settings, registry, metrics, websocket_port=websocket_port, health=health)
    if "/" not in ota_paths:
        app.router.add_get("/", index_handler(settings, websocket_port))
    return app


@dataclass
class HttpSide:
    """A running HTTP server; ``port`` is the bound port (useful with port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    async def close(self) -> None:
        """Stop listening and finish in-flight requests (the registry is left open)."""
        await self.runner.cleanup()


async def start_http(
    settings: Settings,
    registry: DeviceRegistry,
    metrics: ServerMetrics,
    *,
    websocket_port: int,
    health: Callable[[], dict[str, Any]],
    mqtt_offer: MqttOffer | None = None,
    device_tokens: DeviceTokens | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> HttpSide:
    """Serve the app on ``settings.ota.host``/``port``; raises ``OSError`` if the port is taken."""
    app = create_http_app(
        settings,
        registry,
        metrics,
        websocket_port=websocket_port,
        health=health,
        mqtt_offer=mqtt_offer,
        device_tokens=device_tokens,
    )
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=QuietAccessLogger,
        access_log=logging.getLogger("server.http.access"),
    )
    await runner.setup()
    try:
        site = web.TCPSite(
            runner,
            settings.ota.host,
            settings.ota.port,
            ssl_context=ssl_context,
            reuse_port=settings.websocket.reuse_port or None,
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    logger.info("HTTP (OTA, /, /healthz, /metrics) listening on %s:%d", settings.ota.host, port)
    return HttpSide(runner=runner, host=settings.ota.host, port=port)
