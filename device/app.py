"""Composition root of one simulated board: identity, OTA boot, controller, channel, audio.

``device = await Device.create(options, on_event)``; ``await device.boot()`` runs the firmware's
boot (OTA check and activation unless ``ws_url`` is given); then drive ``device.controller``.

The simulated firmware version decides the rest (protocol.md §0): ``--legacy-iot`` is a v1.7.x
build (no ``features.mcp``, legacy ``iot`` messages), glyph push needs v2.4.x; the same version
goes into the hello, the OTA system info and the ``User-Agent``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.audio.player import Player
from device.audio.sinks import AudioSink, NullSink, SpeakerSink, WavSink
from device.audio.sources import MicSource, ScriptedSource
from device.controller import DeviceController, LegacyIot, McpHandler
from device.errors import MqttNotImplemented, UsageError
from device.events import EventSink
from device.identity import DEFAULT_FIRMWARE, DeviceIdentity, IdentityStore
from device.ota import OtaClient, OtaOutcome, OtaTimings
from device.transport import WebsocketChannel
from protocol.errors import InvalidField
from protocol.handshake import hello_features

__all__ = ["Device", "DeviceOptions", "MqttNotImplemented", "firmware_version_for"]
logger = logging.getLogger(__name__)

LEGACY_IOT_FIRMWARE = "1.7.7"
"""The last firmware line with the legacy IoT build option (v1.6.x – v1.7.7)."""


def firmware_version_for(firmware: str | None, *, legacy_iot: bool, glyph_push: bool) -> str:
    """The simulated firmware version: as given, else 1.7.7 for legacy IoT, else 2.4.2.

    UsageError when the build cannot exist (legacy IoT after 1.7.x, glyph push before 2.4).
    """
    version = firmware or (LEGACY_IOT_FIRMWARE if legacy_iot else DEFAULT_FIRMWARE)
    try:
        hello_features(version, legacy_iot=legacy_iot, glyph_push=glyph_push)
    except InvalidField as exc:
        raise UsageError(f"{exc} (--firmware, --legacy-iot, --glyph-push)") from exc
    return version


@dataclass
class DeviceOptions:
    """Everything the CLI can set; times in seconds."""

    state_file: Path | None = None
    ota_url: str | None = None
    ws_url: str | None = None
    token: str | None = None
    protocol_version: int | None = None
    board: str | None = None
    firmware: str | None = None
    """Simulated firmware version; None: 2.4.2, or 1.7.7 with ``legacy_iot``."""
    language: str | None = None
    aec: bool = False
    fast: bool = False
    mic: bool = False
    sink: str = "null"
    """``null``, ``speaker`` or a WAV path."""
    realtime_playback: bool = True
    channel_timeout_s: float = 120.0
    hello_timeout_s: float = 10.0
    legacy_iot: bool = False
    glyph_push: bool = False
    ota_timings: OtaTimings = field(default_factory=OtaTimings)
    transport: str = "auto"
    """``auto`` (as the OTA answer says, like the firmware), ``websocket`` or ``mqtt``."""
    udp_loss: float = 0.0
    """MQTT + UDP: fraction of uplink datagrams lost on purpose."""
    udp_reorder: float = 0.0
    """MQTT + UDP: fraction of uplink datagrams sent after the next one."""


def make_sink(spec: str) -> AudioSink:
    if spec == "null":
        return NullSink()
    if spec == "speaker":
        return SpeakerSink()
    return WavSink(Path(spec))


def make_iot(
    identity: DeviceIdentity, legacy: bool, on_event: EventSink | None
) -> tuple[McpHandler | None, LegacyIot | None]:
    """The iot package's MCP server (or legacy IoT adapter) for the demo board, if available."""
    from device.iot_bridge import build_iot

    try:
        return build_iot(identity, legacy=legacy, on_event=on_event)
    except ImportError as exc:  # iot/ incomplete
        logger.warning("iot package unavailable, the device has no tools: %s", exc)
        return None, None


class Device:
    """One board: identity + controller (+ OTA outcome after :meth:`boot`)."""

    def __init__(
        self,
        options: DeviceOptions,
        identity: DeviceIdentity,
        store: IdentityStore,
        controller: DeviceController,
    ) -> None:
        self.options, self.identity, self.store = options, identity, store
        self.controller = controller
        self.ota: OtaOutcome | None = None

    @classmethod
    async def create(cls, options: DeviceOptions, on_event: EventSink | None = None) -> Device:
        firmware = firmware_version_for(
            options.firmware, legacy_iot=options.legacy_iot, glyph_push=options.glyph_push
        )
        store = IdentityStore(options.state_file)
        identity = store.load(
            board_name=options.board, firmware_version=firmware, language=options.language
        )
        identity.firmware_version = firmware  # the build simulated now, whatever ran before
        for attr, value in (("board_name", options.board), ("language", options.language)):
            if value:
                setattr(identity, attr, value)
        player = Player(make_sink(options.sink), realtime=options.realtime_playback)
        source: ScriptedSource | MicSource = MicSource() if options.mic else ScriptedSource()
        mcp, legacy = make_iot(identity, options.legacy_iot, on_event)
        channel = WebsocketChannel(
            identity,
            hello_timeout_s=options.hello_timeout_s,
            glyph_push=options.glyph_push,
            legacy_iot=options.legacy_iot,
        )
        controller = DeviceController(
            identity,
            source=source,
            player=player,
            on_event=on_event,
            mcp=None if options.legacy_iot else mcp,
            legacy_iot=legacy,
            aec=options.aec,
            fast=options.fast,
            channel_timeout_s=options.channel_timeout_s,
            channel=channel,
        )
        return cls(options, identity, store, controller)

    async def boot(self) -> None:
        """Starting → Activating (OTA unless ``ws_url``) → Idle, on the transport the OTA answer
        chose (an ``mqtt`` section → MQTT + UDP) unless ``transport`` forces one."""
        opts, ident = self.options, self.identity
        await self.controller.boot()
        if opts.ws_url:
            ident.websocket["url"] = opts.ws_url
            if opts.token is not None:
                ident.websocket["token"] = opts.token
        elif opts.ota_url:
            self.ota = await OtaClient(ident, self.store, opts.ota_url, opts.ota_timings).run()
        else:
            raise ValueError("give --ota-url or --ws-url")
        if opts.protocol_version is not None:
            ident.websocket["version"] = opts.protocol_version
        self.store.save(ident)
        ota_mqtt = self.ota is not None and self.ota.transport == "mqtt"
        if opts.transport == "mqtt" or (opts.transport == "auto" and ota_mqtt):
            await self._use_mqtt()
        await self.controller.start()

    async def _use_mqtt(self) -> None:
        """MQTT + UDP (protocol.md §4): the MQTT connection is made at boot and kept."""
        from device.mqtt_transport import MqttChannel
        from protocol.enums import DeviceState

        c, opts = self.controller, self.options
        channel = MqttChannel(
            self.identity,
            on_message=c._on_message,
            on_audio=c._on_audio,
            on_closed=c._on_closed,
            on_ready=c._on_ready,
            hello_timeout_s=opts.hello_timeout_s,
            glyph_push=opts.glyph_push,
            legacy_iot=opts.legacy_iot,
            udp_loss=opts.udp_loss,
            udp_reorder=opts.udp_reorder,
            is_idle=lambda: c.state == DeviceState.IDLE,
        )
        c.channel = channel  # type: ignore[assignment]
        if not await channel.connect():  # the firmware boots on; a chat reconnects on demand
            logger.warning("MQTT at boot: %s", channel.error)

    async def close(self) -> None:
        shutdown = getattr(self.controller.channel, "shutdown", None)
        if shutdown is not None:  # MQTT: goodbye, then disconnect
            await shutdown()
        await self.controller.close()
        self.store.save(self.identity)

    def summary(self) -> dict[str, Any]:
        return {
            "mac": self.identity.mac,
            "uuid": self.identity.uuid,
            "session_id": self.identity.session_id,
        }
