"""One device connection: moves messages between the socket and the session core.

Text → typed message → event for the pure state machine (:mod:`.state`); binary → uplink queue →
:class:`~server.pipeline.uplink.UplinkProcessor` in the bounded executor; actions from the state
machine are run here (send ``stt``, start/cancel a :class:`~.turn.Turn`, open/close the mic).
Bad input (malformed JSON, unknown types, bad binary headers, corrupt Opus) is logged, counted in
the metrics by error code and dropped; the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from protocol.audio import AudioParams
from protocol.binary import decode_frame
from protocol.enums import ListenMode
from protocol.errors import BinaryFrameError, MessageError
from protocol.messages import (
    Abort,
    DeviceGoodbye,
    DeviceHello,
    DeviceMcp,
    IotDescriptors,
    IotStates,
    ListenDetect,
    ListenStart,
    ListenStop,
    ServerHello,
    Stt,
    TtsStop,
    WireModel,
    decode_device_message,
    encode_message,
)
from server.pipeline.uplink import UplinkResult
from server.providers.base import DialogueContext
from server.session import state as st
from server.session.deps import SessionDeps
from server.session.ledger import TurnLedger
from server.session.tools import DeviceTools
from server.session.turn import Downlink, Turn
from server.session.uplink import Uplink
from server.session.uplink_queue import Frame

TOOLS_WAIT_S = 2.0
"""Longest a new utterance waits for MCP tool discovery before its grammar is fixed (s)."""

logger = logging.getLogger(__name__)


class ChannelClosed(Exception):
    """The peer went away (close frame or plain TCP drop)."""


class Channel(Protocol):
    """A message socket: ``recv`` returns ``str`` (text) or ``bytes`` (binary)."""

    async def recv(self) -> str | bytes: ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class PeerInfo:
    """What the handshake told us (headers or query parameters)."""

    device_id: str = ""
    client_id: str = ""
    protocol_version: int | None = None
    remote: str = ""


class SessionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with ``[session device]``."""

    def process(self, msg: object, kwargs: object) -> tuple[str, object]:  # type: ignore[override]
        extra = self.extra or {}
        return f"[{extra.get('session_id')} {extra.get('device_id') or '-'}] {msg}", kwargs


@dataclass
class _Runtime:
    turn: Turn | None = None
    turn_task: asyncio.Task[None] | None = None
    history: list[dict[str, object]] = field(default_factory=list)


class Connection:
    """Runs one session until the socket closes, the hello times out or the session idles."""

    def __init__(self, channel: Channel, deps: SessionDeps, peer: PeerInfo) -> None:
        self._channel = channel
        self._deps = deps
        self._peer = peer
        self.session_id = str(uuid.uuid4())
        self.log = SessionLog(
            logger, {"session_id": self.session_id[:8], "device_id": peer.device_id}
        )
        self.state = st.SessionState()
        self._lock = asyncio.Lock()
        self._rt = _Runtime()
        self._version = 1
        self._active_turn: int | None = None
        ws = deps.settings.websocket
        self._uplink = Uplink(deps, self._on_uplink_result, self.log)
        self._tools = DeviceTools(
            self._send_message,
            call_timeout_s=deps.settings.dialogue.tool_call_timeout_s,
            log=self.log,
        )
        self._phrases_key: tuple[int, int] | None = None
        self._phrases: tuple[str, ...] | None = None
        self._idle_s = ws.idle_timeout_s
        self._downlink = Downlink(
            deps.settings.audio.downlink_sample_rate_hz,
            deps.settings.audio.downlink_frame_duration_ms,
            1,
        )
        self._pending_ledger: TurnLedger | None = None
        self.dropped_frames = 0

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        metrics = self._deps.metrics
        metrics.connection_opened()
        worker: asyncio.Task[None] | None = None
        try:
            hello = await self._await_hello()
            if hello is None:
                return
            await self._on_hello(hello)
            worker = asyncio.create_task(self._uplink.run(), name="uplink")
            await self._receive_loop()
        except ChannelClosed:
            pass
        finally:
            await self._shutdown(worker)
            metrics.connection_closed()
            self.log.info("session ended")

    async def _shutdown(self, worker: asyncio.Task[None] | None) -> None:
        self._active_turn = None
        tasks = [t for t in (worker, self._rt.turn_task) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._tools.close()
        await self._uplink.close()

    async def _recv(self, timeout_s: float) -> str | bytes | None:
        """The next message, or None after ``timeout_s`` without one."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self._channel.recv()
        except TimeoutError:
            return None

    async def _await_hello(self) -> DeviceHello | None:
        deadline = time.monotonic() + self._deps.settings.websocket.hello_timeout_s
        while (left := deadline - time.monotonic()) > 0:
            data = await self._recv(left)
            if data is None:
                break
            if isinstance(data, bytes):
                continue  # audio before hello: nothing to decode it with yet
            message = self._decode(data)
            if isinstance(message, DeviceHello):
                return message
            if message is not None:
                self.log.info("%s before hello; ignored", type(message).__name__)
        self.log.info(
            "no hello within %.1f s; closing", self._deps.settings.websocket.hello_timeout_s
        )
        await self._channel.close(1000, "hello timeout")
        return None

    async def _receive_loop(self) -> None:
        while True:
            data = await self._recv(self._idle_s)
            if data is None:
                self.log.info("idle for %.0f s; closing", self._idle_s)
                await self._channel.close(1000, "idle timeout")
                return
            if isinstance(data, bytes):
                self._on_binary(data)
                continue
            message = self._decode(data)
            if message is not None:
                await self._on_message(message)

    # ------------------------------------------------------------------ inbound

    def _decode(self, data: str) -> object | None:
        try:
            return decode_device_message(
                data, max_bytes=self._deps.settings.websocket.max_message_bytes
            )
        except MessageError as exc:
            self.log.info("ignored text message (%s): %s", exc.code, exc)
            self._deps.metrics.error(exc.code)
            return None

    async def _on_hello(self, hello: DeviceHello) -> None:
        if "version" in hello.model_fields_set:
            version = hello.version
        else:
            version = self._peer.protocol_version or 1
        if version not in (1, 2, 3):
            self.log.warning("unsupported binary version %s; using 1", version)
            version = 1
        self._version = version
        down = self._downlink
        self._downlink = Downlink(down.sample_rate_hz, down.frame_duration_ms, version)
        uplink = hello.audio_params
        await self._send_message(
            ServerHello(
                transport="websocket",
                session_id=self.session_id,
                audio_params=AudioParams(
                    sample_rate=down.sample_rate_hz, frame_duration=down.frame_duration_ms
                ),
            )
        )
        self.log.info(
            "hello: binary v%d, uplink %s Hz/%s ms, features %s",
            version,
            uplink.sample_rate,
            uplink.frame_duration,
            hello.features.model_dump(exclude_none=True) if hello.features else {},
        )
        self._uplink.open()
        if hello.features is not None and hello.features.mcp:
            try:
                self._tools.start_mcp()
            except ImportError as exc:
                self.log.warning("MCP client unavailable: %s", exc)

    async def _on_message(self, message: object) -> None:
        match message:
            case DeviceHello():
                await self._on_hello(message)
            case ListenStart(mode=mode):
                await self._apply(st.ListenStarted(mode))
            case ListenStop():
                await self._apply(st.ListenStopped())
            case ListenDetect(text=text):
                self.log.info("wake word %r", text)
                await self._apply(st.ListenDetected(text))
            case Abort(reason=reason):
                self.log.info("abort (%s)", reason or "button")
                await self._apply(st.Aborted(reason))
            case DeviceMcp(payload=payload):
                self._tools.feed_mcp(payload)
            case IotDescriptors() | IotStates():
                try:
                    self._tools.feed_legacy(message)
                except ImportError as exc:
                    self.log.info("legacy iot ignored: %s", exc)
            case DeviceGoodbye():
                self.log.info("goodbye over WebSocket; ignored (the device closes the socket)")
            case _:
                self.log.info("ignored %s", type(message).__name__)

    def _on_binary(self, data: bytes) -> None:
        metrics = self._deps.metrics
        if not self.state.listening:
            metrics.frame_dropped("not-listening")
            return
        try:
            frame = decode_frame(data, self._version)
        except BinaryFrameError as exc:
            self.log.info("dropped binary frame (%s): %s", exc.code, exc)
            metrics.error(exc.code)
            metrics.frame_dropped(exc.code)
            return
        if not frame.payload:
            metrics.frame_dropped("empty")
            return
        if not self._uplink.put_frame(Frame(self.state.epoch, frame.payload, time.monotonic())):
            self.dropped_frames += 1
            metrics.frame_dropped("uplink-queue-full")

    # ------------------------------------------------------------------ uplink worker

    async def _on_uplink_result(self, epoch: int, result: UplinkResult) -> None:
        for code in result.errors:
            self._deps.metrics.error(code)
            if code == "corrupt-audio":
                self._deps.metrics.frame_dropped(code)
        turn = self._rt.turn
        gate = self._deps.barge_in
        if (
            turn is not None
            and self._active_turn == turn.turn_id
            and self.state.mode == ListenMode.REALTIME
            and result.speech_run_ms >= gate.min_speech_ms
            and turn.tts_started_at is not None
            and time.monotonic() - turn.tts_started_at >= gate.echo_guard_s
        ):
            self.log.info("barge-in: %.0f ms of speech while speaking", result.speech_run_ms)
            await self._apply(st.BargeInSpeech(epoch))
        if result.final_text is not None:
            now = time.monotonic()
            ledger = TurnLedger(turn_id=0)
            if result.speech_end_s is not None:
                ledger.mark("speech_end", result.speech_end_s)
            ledger.mark("speech_end_detected", result.detected_s or now)
            ledger.mark("asr_final", result.final_s or now)
            self.log.info("utterance ended (%s): %r", result.end_reason or "-", result.final_text)
            self._pending_ledger = ledger
            await self._apply(
                st.UtteranceEnded(
                    epoch, result.final_text, result.heard_speech, asr_failed=result.asr_failed
                )
            )

    # ------------------------------------------------------------------ actions

    async def _apply(self, event: st.Event) -> None:
        async with self._lock:
            self.state, actions = st.transition(self.state, event)
            for action in actions:
                await self._run_action(action)

    async def _run_action(self, action: st.Action) -> None:
        match action:
            case st.OpenUtterance(epoch=epoch, mode=mode):
                self._uplink.begin(epoch, mode, self._phrases_for_utterance)
            case st.CloseMicrophone():
                self._uplink.cancel()
            case st.FinishUtterance(epoch=epoch):
                self._uplink.finish(epoch)
            case st.SendStt(text=text):
                await self._send_message(Stt(text=text))
            case st.StartTurn(turn_id=turn_id, text=text, fixed=fixed):
                self._start_turn(turn_id, text, fixed)
            case st.CancelTurn(turn_id=turn_id):
                await self._cancel_turn(turn_id)

    async def _phrases_for_utterance(self) -> tuple[str, ...] | None:
        """Grammar phrases for the utterance starting now. A board sends ``listen start`` right
        after the hello, often before MCP ``tools/list`` has finished: wait for the tool list
        (bounded) so the first command is recognised with the full grammar."""
        if self._deps.settings.asr.mode == "grammar":
            await self._tools.wait_ready(TOOLS_WAIT_S)
        return self._current_phrases()

    def _current_phrases(self) -> tuple[str, ...] | None:
        if self._deps.settings.asr.mode != "grammar":
            return None
        key = (id(self._tools), self._tools.version)
        if key != self._phrases_key:
            phrases = self._deps.dialogue.phrases(self._tools.tools)
            self._phrases = tuple(phrases) if phrases else None
            self._phrases_key = key
        return self._phrases

    def _start_turn(self, turn_id: int, text: str, fixed: bool) -> None:
        ledger = self._pending_ledger or TurnLedger(turn_id)
        ledger.turn_id = turn_id
        self._pending_ledger = None
        context = DialogueContext(
            tools=self._tools.tools,
            call_tool=self._tools.call_tool,
            history=self._rt.history,
            language=self._deps.settings.asr.language,
            device_id=self._peer.device_id,
        )
        turn = Turn(turn_id, self._deps.turn, self, self._downlink, context, ledger, self.log)
        self._active_turn = turn_id
        self._rt.turn = turn
        self._rt.turn_task = asyncio.create_task(self._run_turn(turn, text, fixed))

    async def _run_turn(self, turn: Turn, text: str, fixed: bool) -> None:
        try:
            await turn.run(text, fixed=fixed)
        except Exception as exc:
            rest = exc.split(ChannelClosed)[1] if isinstance(exc, ExceptionGroup) else exc
            if rest is not None and not isinstance(rest, ChannelClosed):
                self.log.error("turn %d failed", turn.turn_id, exc_info=rest)
                self._deps.metrics.error("turn-failed")
        finally:
            self._finish_ledger(turn)
        if self._active_turn == turn.turn_id:
            self._active_turn = None
            self._deps.metrics.turn_completed()
            await self._apply(st.TurnFinished(turn.turn_id))

    def _finish_ledger(self, turn: Turn) -> None:
        ledger = turn.ledger
        ledger.cancelled = self._active_turn != turn.turn_id
        self.log.info("%s frames=%d", ledger.summary(), turn.frames_sent)
        if not ledger.cancelled:
            ledger.observe(self._deps.metrics)

    async def _cancel_turn(self, turn_id: int) -> None:
        self._active_turn = None
        task = self._rt.turn_task
        if task is not None and not task.done():
            task.cancel()
        self.log.info("turn %d cancelled", turn_id)
        await self._send_message(TtsStop())

    # ------------------------------------------------------------------ outbound

    async def _send_message(self, message: WireModel) -> None:
        try:
            await self._channel.send(encode_message(message))
        except ChannelClosed:
            raise
        except Exception as exc:  # the socket is going away
            raise ChannelClosed(str(exc)) from exc

    async def send_turn_text(self, turn_id: int, message: WireModel) -> bool:
        if turn_id != self._active_turn:
            return False
        await self._send_message(message)
        return True

    async def send_turn_audio(self, turn_id: int, packet: bytes) -> bool:
        if turn_id != self._active_turn:
            return False
        try:
            await self._channel.send(packet)
        except ChannelClosed:
            raise
        except Exception as exc:
            raise ChannelClosed(str(exc)) from exc
        return True
