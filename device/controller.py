"""The board's ``Application``: triggers, server messages, state side effects (protocol.md §5).

Triggers (:meth:`click`, :meth:`press`, :meth:`release`, :meth:`wake_word`) and server messages
move the :class:`DeviceStateMachine`; entering a state runs the firmware's side effects (mic on/off,
``listen start``, decoder reset). Every wire message is built with ``encode_message``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from device.audio.player import Player
from device.audio.sources import MicSource, ScriptedSource
from device.identity import DeviceIdentity
from device.metrics import TurnTimer
from device.state import DeviceStateMachine
from device.transport import WebsocketChannel
from device.wakeword import KeyphraseSpotter
from protocol.audio import Pcm, rms_dbfs, split_frames
from protocol.enums import AbortReason, DeviceState, ListenMode
from protocol.messages import Abort, DeviceMcp, ListenDetect, ListenStart, ListenStop
from protocol.opus import OpusEncoder

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 960
FRAME_S = 0.060
EventSink = Callable[[dict[str, Any]], None]


class McpHandler(Protocol):
    async def handle(self, payload: dict[str, Any]) -> dict[str, Any] | None: ...


class LegacyIot(Protocol):
    """Legacy IoT (§8): the messages to send and the commands to apply."""

    def descriptor_messages(self, session_id: str) -> list[str]: ...

    def state_message(self, session_id: str, *, delta: bool) -> str | None: ...

    async def apply_commands(self, message: dict[str, Any]) -> None: ...


class DeviceController:
    """One simulated board's behaviour on top of a :class:`WebsocketChannel`."""

    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        source: ScriptedSource | MicSource,
        player: Player,
        on_event: EventSink | None = None,
        mcp: McpHandler | None = None,
        legacy_iot: LegacyIot | None = None,
        aec: bool = False,
        fast: bool = False,
        channel_timeout_s: float = 120.0,
        hello_timeout_s: float = 10.0,
        glyph_push: bool = False,
    ) -> None:
        self.identity = identity
        self.source, self.player = source, player
        self._emit_cb = on_event
        self.mcp, self.legacy_iot = mcp, legacy_iot
        self.aec, self.fast = aec, fast
        self.sm = DeviceStateMachine()
        self.channel = WebsocketChannel(
            identity,
            on_json=self._on_json,
            on_audio=self._on_audio,
            on_closed=self._on_closed,
            hello_timeout_s=hello_timeout_s,
            channel_timeout_s=channel_timeout_s,
            glyph_push=glyph_push,
            mcp=legacy_iot is None,  # legacy-IoT builds (≤ v1.7.x) predate features.mcp
        )
        self.mode = ListenMode.AUTO
        self.encoder = OpusEncoder(16000, 60, complexity=0, dtx=True)
        self._uplink_on = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._uplink_task: asyncio.Task[None] | None = None
        self.turns: list[TurnTimer] = []
        self.turn_ended = asyncio.Event()
        """Set at every ``tts stop`` (and when the channel closes)."""
        self.emotion = "neutral"
        self.reboot_requested = asyncio.Event()
        self.wake_spotter: KeyphraseSpotter | None = None
        """Set to spot a wake word in live microphone audio while idle/speaking."""
        self.mic_level_dbfs = -120.0

    # ------------------------------------------------------------------ lifecycle
    @property
    def state(self) -> DeviceState:
        return self.sm.state

    @property
    def mic_open(self) -> bool:
        """Uplink streaming (listening with ``listen start`` sent)."""
        return self._uplink_on.is_set()

    @property
    def default_mode(self) -> ListenMode:
        return ListenMode.REALTIME if self.aec else ListenMode.AUTO

    def emit(self, event: str, **fields: Any) -> None:
        if self._emit_cb is not None:
            self._emit_cb({"event": event, "t": round(time.time(), 3), **fields})

    async def boot(self) -> None:
        """Unknown → Starting → Activating (OTA is done by the caller) → Idle."""
        for state in (DeviceState.STARTING, DeviceState.ACTIVATING):
            await self._set_state(state)

    async def start(self) -> None:
        """After boot: Idle, player and uplink tasks running."""
        await self._set_state(DeviceState.IDLE)
        self.player.start()
        self._uplink_task = asyncio.create_task(self._uplink_loop(), name="device-uplink")

    async def close(self) -> None:
        self.channel.close()
        tasks = [t for t in [self._uplink_task, *self._tasks] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.player.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ state side effects
    async def _set_state(self, new: DeviceState) -> bool:
        old = self.sm.state
        if not self.sm.transition(new):
            return False
        if old != new:
            self.emit("state", old=old.value, new=new.value)
            await self._entered(old, new)
        return True

    async def _entered(self, old: DeviceState, new: DeviceState) -> None:
        if new == DeviceState.IDLE:
            self._uplink_on.clear()
        elif new == DeviceState.SPEAKING:
            if self.mode != ListenMode.REALTIME:
                self._uplink_on.clear()
            self.player.reset()
        elif new == DeviceState.LISTENING:
            await self._send_iot_delta()  # the firmware updates IoT states before listen start
            if self._uplink_on.is_set():
                return
            if self.mode == ListenMode.AUTO and old == DeviceState.SPEAKING:
                self._spawn(self._listen_after_drain())
            else:
                await self._start_listening()

    async def _listen_after_drain(self) -> None:
        await self.player.wait_drained()
        if self.state == DeviceState.LISTENING and not self._uplink_on.is_set():
            await self._start_listening()

    async def _start_listening(self) -> None:
        self.turns.append(TurnTimer(index=len(self.turns)))
        self.turn_ended.clear()
        await self.channel.send_json(
            ListenStart(session_id=self.identity.session_id, mode=self.mode)
        )
        self._uplink_on.set()

    async def _send_iot_delta(self) -> None:
        if self.legacy_iot is not None:
            msg = self.legacy_iot.state_message(self.identity.session_id, delta=True)
            if msg:
                await self.channel.send_json(msg)

    @property
    def turn(self) -> TurnTimer:
        if not self.turns:
            self.turns.append(TurnTimer())
        return self.turns[-1]

    # ------------------------------------------------------------------ triggers
    async def _ensure_channel(self) -> bool:
        if self.channel.is_open():
            return True
        await self._set_state(DeviceState.CONNECTING)
        if not await self.channel.open():
            self.emit("alert", status="error", message=self.channel.error or "", emotion="sad")
            await self._set_state(DeviceState.IDLE)
            return False
        self.emit(
            "channel",
            opened=True,
            session_id=self.identity.session_id,
            sample_rate=self.channel.server_sample_rate_hz,
        )
        self.player.configure(
            self.channel.server_sample_rate_hz, self.channel.server_frame_duration_ms
        )
        if self.legacy_iot is not None:
            sid = self.identity.session_id
            for msg in self.legacy_iot.descriptor_messages(sid):
                await self.channel.send_json(msg)
            full = self.legacy_iot.state_message(sid, delta=False)
            if full:
                await self.channel.send_json(full)
        return True

    async def click(self) -> None:
        """The boot button (``ToggleChatState``)."""
        st = self.state
        if st == DeviceState.ACTIVATING:
            await self._set_state(DeviceState.IDLE)
        elif st == DeviceState.IDLE:
            if not await self._ensure_channel():
                return
            self.mode = self.default_mode
            await self._set_state(DeviceState.LISTENING)
        elif st == DeviceState.SPEAKING:
            await self.abort(None)
        elif st == DeviceState.LISTENING:
            self.channel.close()
            await self._set_state(DeviceState.IDLE)

    async def press(self) -> None:
        """Push-to-talk pressed (``StartListening``)."""
        st = self.state
        if st == DeviceState.ACTIVATING:
            await self._set_state(DeviceState.IDLE)
            return
        if st == DeviceState.IDLE:
            if not await self._ensure_channel():
                return
        elif st == DeviceState.SPEAKING:
            await self.abort(None)
        else:
            return
        self.mode = ListenMode.MANUAL
        await self._set_state(DeviceState.LISTENING)

    async def release(self) -> None:
        """Push-to-talk released (``StopListening``): listen stop, idle, channel kept."""
        if self.state == DeviceState.LISTENING:
            await self.channel.send_json(ListenStop(session_id=self.identity.session_id))
            await self._set_state(DeviceState.IDLE)

    async def wake_word(self, text: str, preroll: Pcm | None = None) -> None:
        """Wake word spotted (``OnWakeWordDetected``)."""
        st = self.state
        if st == DeviceState.IDLE:
            pcm = self.source.preroll() if preroll is None else preroll
            packets = [self.encoder.encode(f) for f in split_frames(pcm[-32000:], FRAME_SAMPLES)]
            if not await self._ensure_channel():
                return
            for packet in packets:
                await self.channel.send_audio(packet)
            sid = self.identity.session_id
            await self.channel.send_json(ListenDetect(session_id=sid, text=text))
            self.mode = self.default_mode
            await self._set_state(DeviceState.LISTENING)
        elif st == DeviceState.SPEAKING:
            await self.abort(AbortReason.WAKE_WORD_DETECTED)
            self.mode = self.default_mode
            await self._set_state(DeviceState.LISTENING)
        elif st == DeviceState.LISTENING:
            await self.abort(AbortReason.WAKE_WORD_DETECTED)
            await self._start_listening()
        elif st == DeviceState.ACTIVATING:
            await self._set_state(DeviceState.IDLE)

    async def abort(self, reason: AbortReason | None) -> None:
        """Send abort (no local state change)."""
        self.turn.abort_sent = time.monotonic()
        sid = self.identity.session_id
        await self.channel.send_json(Abort(session_id=sid, reason=reason.value if reason else None))
        self.emit("abort", reason=reason.value if reason else None)

    # ------------------------------------------------------------------ uplink
    async def _uplink_loop(self) -> None:
        next_t: float | None = None
        while True:
            if not self._uplink_on.is_set() and isinstance(self.source, ScriptedSource):
                next_t = None
                await self._uplink_on.wait()
            if isinstance(self.source, ScriptedSource):
                pace = not (self.fast and self.source.busy)
                pcm, ended = self.source.read(FRAME_SAMPLES)
                now = time.monotonic()
                next_t = (now if next_t is None else next_t) + (FRAME_S if pace else 0.0)
                await asyncio.sleep(max(0.0, next_t - now))
            else:
                pcm, ended = await self.source.read_async(FRAME_SAMPLES), False
                self.mic_level_dbfs = rms_dbfs(pcm)
            if not self._uplink_on.is_set():
                self._spot_wake_word(pcm)
                continue
            await self.channel.send_audio(self.encoder.encode(pcm))
            if ended:
                self.turn.speech_end = time.monotonic()
                self.emit("speech_end")

    def _spot_wake_word(self, pcm: Pcm) -> None:
        """Idle/speaking mic audio goes to the wake-word spotter (live microphone only)."""
        if self.wake_spotter is None or self.state not in (DeviceState.IDLE, DeviceState.SPEAKING):
            return
        phrase = self.wake_spotter.feed(pcm)
        if phrase is not None:
            self._spawn(self.wake_word(phrase))

    # ------------------------------------------------------------------ downlink
    def _on_audio(self, payload: bytes) -> None:
        if self.state != DeviceState.SPEAKING:
            if self.turn.tts_stop is not None:
                self.turn.stale_frames += 1
            return
        if self.turn.first_audio is None:
            self.turn.first_audio = time.monotonic()
        self.player.push(payload)

    def _on_closed(self, reason: str) -> None:
        self.emit("channel", opened=False, reason=reason)
        self.turn_ended.set()
        self._spawn(self._set_state(DeviceState.IDLE))

    async def _on_json(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        handler = getattr(self, f"_msg_{kind}", None)
        if handler is None:
            logger.info("ignoring server message of type %r", kind)
            return
        await handler(msg)

    async def _msg_tts(self, msg: dict[str, Any]) -> None:
        state = msg.get("state")
        if state == "start":
            await self._set_state(DeviceState.SPEAKING)
        elif state == "stop":
            if self.state == DeviceState.SPEAKING:
                self.turn.tts_stop = time.monotonic()
                manual = self.mode == ListenMode.MANUAL
                await self._set_state(DeviceState.IDLE if manual else DeviceState.LISTENING)
                self.emit("turn", **self.turn.result())
                self.turn_ended.set()
        elif state == "sentence_start" and isinstance(msg.get("text"), str):
            self.turn.sentences.append(msg["text"])
            self.emit("sentence_start", text=msg["text"])
        self.emit("tts", state=state)

    async def _msg_stt(self, msg: dict[str, Any]) -> None:
        if isinstance(msg.get("text"), str):
            if self.turn.stt is None:
                self.turn.stt = time.monotonic()
                self.turn.stt_text = msg["text"]
            self.emit("stt", text=msg["text"])

    async def _msg_llm(self, msg: dict[str, Any]) -> None:
        if isinstance(msg.get("emotion"), str):
            self.emotion = msg["emotion"]
            self.emit("llm", emotion=self.emotion)

    async def _msg_alert(self, msg: dict[str, Any]) -> None:
        fields = {k: msg.get(k) for k in ("status", "message", "emotion")}
        if all(isinstance(v, str) for v in fields.values()):
            self.emit("alert", **fields)
        else:
            logger.warning("ignoring alert without status/message/emotion strings")

    async def _msg_system(self, msg: dict[str, Any]) -> None:
        if msg.get("command") == "reboot":
            self.channel.close()
            await self._set_state(DeviceState.IDLE)
            self.emit("reboot")
            self.reboot_requested.set()
        else:
            logger.info("ignoring system command %r", msg.get("command"))

    async def _msg_mcp(self, msg: dict[str, Any]) -> None:
        payload = msg.get("payload")
        if not isinstance(payload, dict) or self.mcp is None:
            return
        self._spawn(self._answer_mcp(payload))

    async def _answer_mcp(self, payload: dict[str, Any]) -> None:
        assert self.mcp is not None
        reply = await self.mcp.handle(payload)
        if reply is not None:
            sid = self.identity.session_id
            await self.channel.send_json(DeviceMcp(session_id=sid, payload=reply))

    async def _msg_iot(self, msg: dict[str, Any]) -> None:
        if self.legacy_iot is not None and isinstance(msg.get("commands"), list):
            await self.legacy_iot.apply_commands(msg)


def silence(seconds: float) -> Pcm:
    return np.zeros(int(16000 * seconds), dtype=np.int16)
