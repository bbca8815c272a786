"""``mqtt.broker: external``: the server as a client of a broker that already serves the boards.

For deployments that run their own broker (EMQX, VerneMQ, …). That broker must do what the
embedded one does, because a board never sends SUBSCRIBE:

* **auto-subscription**: subscribe every client to its reply topic on connect; in EMQX the
  *Auto Subscribe* feature with the topic ``devices/p2p/${clientid}`` (the default
  ``mqtt.reply_topic``);
* **authentication** of the boards' OTA-issued credentials (an HTTP auth hook, or accept any
  client id of the form ``GID_xiaozhi@@@…``); the server cannot check them there;
* an ACL that keeps each board on its two topics, and lets this server subscribe to the
  publish topics (``xiaozhi/up/+``) and publish to the reply topics.

The server subscribes to ``publish_topic`` with ``{client_id}`` as ``+`` and learns which board
spoke from the topic; replies go to that board's reply topic, QoS 0. Boards are not seen
connecting or leaving (MQTT has no such events for a client); a session then ends by goodbye or
the 120 s idle rule. Set ``mqtt.public_host``: it is the UDP ``server`` boards are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import aiomqtt

from server.config import MqttSettings
from server.transport.mqtt import MqttGateway, client_of, topic_for

logger = logging.getLogger(__name__)

RECONNECT_S = 5.0


class ExternalBroker:
    """An ``aiomqtt`` client session that reconnects until closed."""

    def __init__(self, settings: MqttSettings, gateway: MqttGateway) -> None:
        self.settings, self.gateway = settings, gateway
        self.port = settings.external_port
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._identifier = f"xiaozhi-server-{os.urandom(4).hex()}"

    async def start(self) -> None:
        """Connect once (raises ``aiomqtt.MqttError`` if the broker is unreachable)."""
        if self.settings.public_host is None:
            logger.warning("mqtt.public_host is not set: boards are told UDP server 127.0.0.1")
        await self._connect()
        self._task = asyncio.create_task(self._run(), name="mqtt-external")

    async def _connect(self) -> None:
        s = self.settings
        client = aiomqtt.Client(
            s.external_host,
            s.external_port,
            identifier=self._identifier,
            username=s.external_username or None,
            password=s.external_password.get_secret_value() or None,
            keepalive=60,
            timeout=10,
        )
        await client.__aenter__()
        await client.subscribe(topic_for(s.publish_topic, "+"), qos=0)
        self._client = client
        logger.info(
            "MQTT: client of the broker at %s:%d (boards publish to %s)",
            s.external_host,
            s.external_port,
            topic_for(s.publish_topic, "+"),
        )

    async def _run(self) -> None:
        template = self.settings.publish_topic
        while True:
            client = self._client
            if client is None:
                try:
                    await self._connect()
                except aiomqtt.MqttError as exc:
                    logger.warning("MQTT broker unreachable (%s); retrying", exc)
                    await asyncio.sleep(RECONNECT_S)
                continue
            try:
                async for message in client.messages:
                    topic = str(message.topic)
                    board = client_of(template, topic)
                    payload = message.payload
                    if board is None or not isinstance(payload, bytes | bytearray):
                        continue
                    self.gateway.board_message(board, topic, bytes(payload))
            except aiomqtt.MqttError as exc:
                logger.warning("MQTT broker connection lost: %s", exc)
            self._client = None
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def publish(self, topic: str, text: str) -> None:
        if self._client is None:
            raise ConnectionError("not connected to the MQTT broker")
        await self._client.publish(topic, text.encode("utf-8"), qos=0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
