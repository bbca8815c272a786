"""The embedded MQTT broker (``amqtt``) that boards connect to.

Why a broker of our own: a board never sends SUBSCRIBE (protocol.md §4.1), so a stock broker
never delivers the server's replies to it. Here two ``amqtt`` plugins give the broker the rules
the xiaozhi services have:

* :class:`BoardAuthPlugin`: CONNECT is accepted only with the ``client_id``/``username``/
  ``password`` the OTA answer issued (:mod:`.mqtt_credentials`); on connect the board is
  subscribed to its reply topic; its PUBLISHes go to the gateway in arrival order.
* :class:`BoardTopicsPlugin`: a board may publish only to its own publish topic and receive
  (or SUBSCRIBE, for stock clients) only its own reply topic, so no board can speak for or
  listen to another.

The TCP socket is ours (``asyncio.start_server``, handed to the broker as an ``external``
listener): port 0 works, we know the local address each board reached us on (the UDP
``server`` it is told), and we enforce the keep-alive, which ``amqtt`` does not (its broker
ignores read timeouts): a connection silent for 1.5 × its CONNECT keep-alive is closed
(MQTT 3.1.1 §3.1.2.10), which ends the board's session, and one that has not authenticated
within ``CONNECT_TIMEOUT_S`` is closed too (the firmware's own connect timeout is 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker as AmqttBroker
from amqtt.contexts import Action, BaseContext, BrokerConfig
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from server.config import MqttSettings
from server.transport.mqtt import MqttGateway

logger = logging.getLogger(__name__)

LISTENER = "boards"
KEEPALIVE_GRACE = 1.5
"""A connection silent for this many keep-alive periods is closed (MQTT 3.1.1)."""
CONNECT_TIMEOUT_S = 10.0
"""A TCP connection without an accepted CONNECT by then is closed."""


@dataclass
class Link:
    """One TCP connection: what the broker's plugins and our watchdog share."""

    local_host: str
    keepalive_s: float = 0.0
    """From CONNECT (0: none)."""
    last_read_s: float = field(default_factory=time.monotonic)
    authenticated: bool = False


class _TimedReader(StreamReaderAdapter):  # type: ignore[misc]
    def __init__(self, reader: asyncio.StreamReader, link: Link) -> None:
        super().__init__(reader)
        self.link = link

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await super().read(n)
        self.link.last_read_s = time.monotonic()
        return data


class BoardAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Authentication, auto-subscription and message hand-off (one instance per broker)."""

    @dataclass
    class Config:
        gateway: Any = None
        """The :class:`MqttGateway` (passed in, not parsed from a file)."""
        links: Any = None
        """``{(remote ip, port): Link}`` of the open TCP connections."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.gateway: MqttGateway = self.config.gateway
        self.links: dict[tuple[str, int], Link] = self.config.links

    async def authenticate(self, *, session: Session) -> bool | None:
        """Awaited before CONNACK and before any PUBLISH is read: the board is known before its
        first message, whatever the order of the (scheduled) plugin events."""
        client_id = session.client_id or ""
        if not self.gateway.authenticate(client_id, session.username, session.password):
            return False
        host, port = session.remote_address or "", session.remote_port or 0
        link = self.links.get((host, port))
        if link is not None:
            link.keepalive_s = float(session.keep_alive or 0)
            link.authenticated = True
        local = link.local_host if link is not None else ""
        self.gateway.board_connected(client_id, f"{host}:{port}", local)
        return True

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        await self._subscribe(client_id)

    async def on_broker_client_disconnected(
        self, *, client_id: str, client_session: Session
    ) -> None:
        host, port = client_session.remote_address or "", client_session.remote_port or 0
        self.gateway.board_disconnected(client_id, f"{host}:{port}")

    async def on_broker_client_subscribed(self, *, client_id: str, topic: str, qos: int) -> None:
        self.gateway.udp.count("mqtt-subscribe")  # a stock client; a board never does

    async def on_broker_message_received(self, *, client_id: str, message: Any) -> None:
        if message is None or message.topic is None:
            return
        self.gateway.board_message(client_id, message.topic, bytes(message.data or b""))

    async def _subscribe(self, client_id: str) -> None:
        context = self.context
        add = getattr(context, "add_subscription", None)
        if add is not None:
            await add(client_id, self.gateway.reply_topic(client_id), 0)


class BoardTopicsPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Each board only on its own two topics."""

    @dataclass
    class Config:
        gateway: Any = None

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        gateway: MqttGateway = self.config.gateway
        client = (session.client_id if session is not None else None) or ""
        if action is Action.PUBLISH:
            return topic == gateway.publish_topic(client)
        return topic == gateway.reply_topic(client)


class EmbeddedBroker:
    """``amqtt`` broker on our own listening socket."""

    def __init__(self, settings: MqttSettings, gateway: MqttGateway) -> None:
        self.settings, self.gateway = settings, gateway
        self._links: dict[tuple[str, int], Link] = {}
        self._broker: AmqttBroker | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connect_timeout_s = CONNECT_TIMEOUT_S

    async def start(self) -> None:
        for name in ("transitions", "amqtt"):  # per-packet INFO lines otherwise
            logging.getLogger(name).setLevel(logging.WARNING)
        config = BrokerConfig.from_dict(
            {
                "listeners": {"default": {"type": "external"}, LISTENER: {"type": "external"}},
                "plugins": {
                    f"{__name__}.BoardAuthPlugin": {
                        "gateway": self.gateway,
                        "links": self._links,
                    },
                    f"{__name__}.BoardTopicsPlugin": {"gateway": self.gateway},
                },
            }
        )
        self._broker = AmqttBroker(config, plugin_namespace=f"xiaozhi.mqtt.{id(self)}")
        await self._broker.start()
        s = self.settings
        self._server = await asyncio.start_server(self._accept, s.host, s.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("MQTT (embedded broker) listening on %s:%d", s.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("", 0)
        key = (str(peer[0]), int(peer[1]))
        link = self._links[key] = Link(str(local[0]))
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        watchdog = asyncio.create_task(self._watch(link, writer, key))
        try:
            if self._broker is not None:
                await self._broker.external_connected(
                    _TimedReader(reader, link), StreamWriterAdapter(writer), LISTENER
                )
        except Exception as exc:  # a broken client must not take the listener down
            logger.info("MQTT connection from %s:%s ended: %s", *key, exc)
        finally:
            watchdog.cancel()
            self._links.pop(key, None)
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _watch(self, link: Link, writer: asyncio.StreamWriter, key: tuple[str, int]) -> None:
        """Close the connection without CONNECT in time, or silent for 1.5 × its keep-alive."""
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            limit = link.keepalive_s * KEEPALIVE_GRACE
            await asyncio.sleep(max(0.2, min(limit / 4, 5.0)) if limit else 0.2)
            limit = link.keepalive_s * KEEPALIVE_GRACE  # CONNECT may have arrived meanwhile
            if link.authenticated and not limit:
                return  # keep-alive 0: nothing to watch
            if not link.authenticated and time.monotonic() > deadline:
                logger.info("MQTT %s:%d sent no accepted CONNECT in time; closing", *key)
                with contextlib.suppress(Exception):
                    writer.close()
                return
            if limit and time.monotonic() - link.last_read_s > limit:
                logger.info(
                    "MQTT %s:%d silent for %.0f s (keep-alive %.0f s); closing",
                    *key,
                    limit,
                    link.keepalive_s,
                )
                with contextlib.suppress(Exception):
                    writer.close()
                return

    async def publish(self, topic: str, text: str) -> None:
        if self._broker is None:
            raise ConnectionError("MQTT broker stopped")
        await self._broker.internal_message_broadcast(topic, text.encode("utf-8"), 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
        for task in list(self._connections):
            task.cancel()
