"""The ``mqtt`` section of the OTA answer (protocol.md §2.3, §9 item 18).

A board whose OTA answer has ``mqtt`` uses MQTT + UDP (it wins over ``websocket``), so the
section is given only to the boards chosen for MQTT: ``mqtt.devices[<mac>]``, else
``mqtt.default_transport``. The firmware reads ``endpoint`` (``host:port``; port 8883 means
TLS, which the embedded broker does not speak), ``client_id``, ``username``, ``password``,
``publish_topic`` and ``keepalive``; ``subscribe_topic`` is stored but unused (it is given for
people reading the board's NVS).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from server.config import MqttSettings
from server.transport import mqtt_credentials
from server.transport.mqtt import topic_for

logger = logging.getLogger(__name__)

TLS_PORT = 8883


def transport_for(settings: MqttSettings, device_id: str) -> str:
    """``mqtt`` or ``websocket`` for this board (a mixed fleet: per MAC, else the default)."""
    if not settings.enabled:
        return "websocket"
    return settings.devices.get(device_id.strip().lower(), settings.default_transport)


class MqttOtaOffer:
    """``offer(host, device_id, client_uuid)`` → the ``mqtt`` section, or None (WebSocket)."""

    def __init__(
        self,
        settings: MqttSettings,
        secret: bytes,
        port: Callable[[], int],
        on_offer: Callable[[str, str], None] | None = None,
    ) -> None:
        """``on_offer(client_id, host)``: the host a board was told (its UDP ``server`` later)."""
        self.settings, self.secret, self._port = settings, secret, port
        self._on_offer = on_offer
        if settings.port == TLS_PORT and settings.broker == "embedded":
            logger.warning(
                "mqtt.port 8883: boards use TLS on that port, which the embedded broker does not"
                " speak; choose another port (e.g. 1883) or put a TLS proxy in front"
            )

    def __call__(self, host: str, device_id: str, client_uuid: str | None) -> dict[str, Any] | None:
        if transport_for(self.settings, device_id) != "mqtt":
            return None
        s = self.settings
        port = s.external_port if s.broker == "external" else self._port()
        credentials = mqtt_credentials.issue(self.secret, device_id, client_uuid)
        endpoint = s.endpoint or f"{s.public_host or host}:{port}"
        if self._on_offer is not None:
            self._on_offer(credentials.client_id, endpoint.rpartition(":")[0] or endpoint)
        return {
            "endpoint": endpoint,
            "client_id": credentials.client_id,
            "username": credentials.username,
            "password": credentials.password,
            "publish_topic": topic_for(s.publish_topic, credentials.client_id),
            "subscribe_topic": topic_for(s.reply_topic, credentials.client_id),
            "keepalive": s.keepalive_s,
        }
