"""The thin async shell around :class:`device.core.BoardCore`: one inbox, one loop, actions run.

Triggers (:meth:`click`, :meth:`press`, :meth:`release`, :meth:`wake_word`, :meth:`abort`), the
channel's reader, the uplink loop and the player post core inputs into one inbox; one task
applies them to the core in order and runs the actions it returns (socket writes, mic on/off,
playback). A trigger's coroutine returns once the core has handled it, including the channel
opening it started. No business rule lives here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from device import core
from device.audio.player import Player
from device.audio.sources import MicSource, ScriptedSource
from device.events import ChannelClosed, DeviceEvent, EventSink, ListenStarted, TurnEnded
from device.identity import DeviceIdentity
from device.metrics import TurnTimer
from device.transport import WebsocketChannel
from device.wakeword import KeyphraseSpotter
from protocol.audio import Pcm, rms_dbfs, split_frames
from protocol.enums import AbortReason, DeviceState, ListenMode
from protocol.messages import IotCommands, ServerMessage
from protocol.opus import OpusEncoder

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 960
FRAME_S = 0.060
PREROLL_SAMPLES = 32000


class McpHandler(Protocol):
    async def handle(self, payload: dict[str, Any]) -> dict[str, Any] | None: ...


class LegacyIot(Protocol):
    """Legacy IoT (§8): the messages to send and the commands to apply."""

    def descriptor_messages(self, session_id: str) -> list[str]: ...

    def state_message(self, session_id: str, *, delta: bool) -> str | None: ...

    async def apply_commands(self, message: IotCommands) -> None: ...


Inbox = asyncio.Queue[tuple[core.Input, "asyncio.Future[None] | None"]]


class DeviceController:
    """One simulated board: a :class:`BoardCore` run against a :class:`WebsocketChannel`."""

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
        channel: WebsocketChannel | None = None,
    ) -> None:
        self.identity = identity
        self.source, self.player = source, player
        self.mcp, self.legacy_iot = mcp, legacy_iot
        self.fast = fast
        self._sinks: list[EventSink] = [on_event] if on_event is not None else []
        self.core = core.BoardCore(
            session_id=identity.session_id,
            aec=aec,
            mcp=legacy_iot is None,  # legacy-IoT builds (≤ v1.7.x) predate features.mcp
            legacy_iot=legacy_iot is not None,
            channel_timeout_s=channel_timeout_s,
        )
        self.channel = channel or WebsocketChannel(
            identity,
            hello_timeout_s=hello_timeout_s,
            glyph_push=glyph_push,
            legacy_iot=legacy_iot is not None,
        )
        self.channel.bind(
            on_message=self._on_message,
            on_audio=self._on_audio,
            on_closed=self._on_closed,
            on_ready=self._on_ready,
        )
        self.channel.hello_text()  # an impossible build (e.g. legacy IoT on 2.4.2) fails here
        self.encoder = OpusEncoder(16000, 60, complexity=0, dtx=True)
        self._inbox: Inbox = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._open_waiters: list[asyncio.Future[None]] = []
        self._uplink_on = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._uplink_task: asyncio.Task[None] | None = None
        self.turn_ended = asyncio.Event()
        """Set at every ``tts stop`` that ends a reply (and when the server closes the channel)."""
        self.reboot_requested = asyncio.Event()
        self.wake_spotter: KeyphraseSpotter | None = None
        """Set to spot a wake word in live microphone audio while idle/speaking."""
        self.mic_level_dbfs = -120.0
        """Level of the audio the board is sending (scripted speech or the microphone), dBFS."""
        self.last_server_activity_s = 0.0
        """Monotonic time of the last text or binary message from the server."""

    # ------------------------------------------------------------------ views of the core
    @property
    def state(self) -> DeviceState:
        return self.core.state

    @property
    def mode(self) -> ListenMode:
        return self.core.mode

    @property
    def mic_open(self) -> bool:
        """Uplink streaming (listening with ``listen start`` sent)."""
        return self.core.mic_on

    @property
    def emotion(self) -> str:
        return self.core.emotion

    @property
    def turns(self) -> list[TurnTimer]:
        return self.core.turns

    @property
    def turn(self) -> TurnTimer:
        return self.core.turn

    def subscribe(self, sink: EventSink) -> None:
        """Also deliver every device event to ``sink`` (the scenario runner listens here)."""
        self._sinks.append(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    # ------------------------------------------------------------------ lifecycle
    async def boot(self) -> None:
        """Unknown → Starting → Activating (OTA is done by the caller)."""
        await self._submit(core.PoweredOn(now_s=time.monotonic()))

    async def start(self) -> None:
        """After boot: Idle, player and uplink tasks running."""
        await self._submit(core.Activated(now_s=time.monotonic()))
        self.player.start()
        self._uplink_task = asyncio.create_task(self._uplink_loop(), name="device-uplink")

    async def close(self) -> None:
        self.channel.close()
        tasks = [t for t in [self._uplink_task, self._worker, *self._tasks] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
        await self.player.close()

    # ------------------------------------------------------------------ triggers
    async def click(self) -> None:
        """The boot button (``ToggleChatState``)."""
        await self._submit(core.ButtonClicked(now_s=time.monotonic()))

    async def press(self) -> None:
        """Push-to-talk pressed (``StartListening``)."""
        await self._submit(core.TalkPressed(now_s=time.monotonic()))

    async def release(self) -> None:
        """Push-to-talk released (``StopListening``)."""
        await self._submit(core.TalkReleased(now_s=time.monotonic()))

    async def wake_word(self, text: str, preroll: Pcm | None = None) -> None:
        """Wake word spotted; idle: the last 2 s of audio go out first as an Opus burst."""
        packets: tuple[bytes, ...] = ()
        if self.state == DeviceState.IDLE:
            pcm = self.source.preroll() if preroll is None else preroll
            frames = split_frames(pcm[-PREROLL_SAMPLES:], FRAME_SAMPLES)
            packets = tuple(self.encoder.encode(f) for f in frames)
        await self._submit(core.WakeWordHeard(now_s=time.monotonic(), text=text, preroll=packets))

    async def hang_up(self) -> None:
        """End the conversation: drop the channel, go idle."""
        await self._submit(core.HungUp(now_s=time.monotonic()))

    def report(self, event: DeviceEvent) -> None:
        """Deliver an event that happened outside the board (e.g. the user started speaking)."""
        self._emit(event)

    async def abort(self, reason: AbortReason | None) -> None:
        """Send abort (no local state change)."""
        await self._submit(core.AbortRequested(now_s=time.monotonic(), reason=reason))

    # ------------------------------------------------------------------ inbox
    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="device-core")

    async def _submit(self, event: core.Input) -> None:
        self._ensure_worker()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((event, done))
        await done

    def post(self, event: core.Input) -> None:
        """Queue an input without waiting for it."""
        self._ensure_worker()
        self._inbox.put_nowait((event, None))

    async def _work(self) -> None:
        while True:
            event, done = await self._inbox.get()
            try:
                opened = await self._apply(event)
            except Exception:
                logger.exception("device core input %s failed", type(event).__name__)
                opened = False
            if isinstance(event, core.ChannelReady | core.ChannelFailed):
                waiters, self._open_waiters = self._open_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            if done is not None and not done.done():
                if opened:
                    self._open_waiters.append(done)
                else:
                    done.set_result(None)

    async def _apply(self, event: core.Input) -> bool:
        """Run the core's actions; True when they started opening the channel."""
        opened = False
        for action in self.core.handle(event):
            opened |= isinstance(action, core.OpenChannel)
            await self._run(action)
        return opened

    async def _run(self, action: core.Action) -> None:
        match action:
            case core.Send(message):
                await self.channel.send_json(message)
            case core.SendAudio(packets):
                for packet in packets:
                    await self.channel.send_audio(packet)
            case core.Emit(event):
                self._emit(event)
            case core.OpenMic():
                self._uplink_on.set()
            case core.CloseMic():
                self._uplink_on.clear()
            case core.PlayAudio(payload):
                self.player.push(payload)
            case core.ResetDecoder():
                self.player.reset()
            case core.ConfigureDecoder(rate, frame_ms):
                self.player.configure(rate, frame_ms)
            case core.WatchPlayback():
                self._spawn(self._watch_playback())
            case core.OpenChannel():
                self._spawn(self._open_channel())
            case core.CloseChannel():
                self.channel.close()
            case core.AnswerMcp(payload):
                self._spawn(self._answer_mcp(payload))
            case core.ApplyIotCommands(message):
                if self.legacy_iot is not None:
                    self._spawn(self.legacy_iot.apply_commands(message))
            case core.SendIotDescriptors():
                if self.legacy_iot is not None:
                    for text in self.legacy_iot.descriptor_messages(self.core.session_id):
                        await self.channel.send_json(text)
            case core.SendIotStates(delta):
                if self.legacy_iot is not None:
                    states = self.legacy_iot.state_message(self.core.session_id, delta=delta)
                    if states:
                        await self.channel.send_json(states)

    def _emit(self, event: DeviceEvent) -> None:
        if isinstance(event, TurnEnded | ChannelClosed):
            self.turn_ended.set()
        elif isinstance(event, ListenStarted):
            self.turn_ended.clear()
        if event.kind == "reboot":
            self.reboot_requested.set()
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception:
                logger.exception("event sink failed on %s", event.kind)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_channel(self) -> None:
        if not await self.channel.open():  # success was posted by _on_ready, in message order
            error = self.channel.error or "cannot connect"
            self.post(core.ChannelFailed(now_s=time.monotonic(), error=error))

    async def _watch_playback(self) -> None:
        await self.player.wait_drained()
        self.post(core.PlaybackDrained(now_s=time.monotonic()))

    async def _answer_mcp(self, payload: dict[str, Any]) -> None:
        if self.mcp is None:
            return
        reply = await self.mcp.handle(payload)
        if reply is not None:
            self.post(core.McpAnswered(now_s=time.monotonic(), payload=reply))

    # ------------------------------------------------------------------ channel callbacks
    def _on_ready(self) -> None:
        """The server hello arrived: posted before any message that follows it."""
        self.last_server_activity_s = now = time.monotonic()
        self.post(
            core.ChannelReady(
                now_s=now,
                session_id=self.identity.session_id,
                sample_rate_hz=self.channel.server_sample_rate_hz,
                frame_duration_ms=self.channel.server_frame_duration_ms,
            )
        )

    async def _on_message(self, message: ServerMessage) -> None:
        self.last_server_activity_s = now = time.monotonic()
        self.post(core.MessageReceived(now_s=now, message=message))

    def _on_audio(self, payload: bytes) -> None:
        self.last_server_activity_s = now = time.monotonic()
        self.post(core.AudioReceived(now_s=now, payload=payload))

    def _on_closed(self, reason: str) -> None:
        self.post(core.ChannelDropped(now_s=time.monotonic(), reason=reason))

    # ------------------------------------------------------------------ uplink
    async def _uplink_loop(self) -> None:
        next_t: float | None = None
        while True:
            if not self._uplink_on.is_set() and isinstance(self.source, ScriptedSource):
                next_t = None
                self.mic_level_dbfs = -120.0
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
                self.post(core.SpeechSent(now_s=time.monotonic()))

    def _spot_wake_word(self, pcm: Pcm) -> None:
        """Idle/speaking mic audio goes to the wake-word spotter (live microphone only)."""
        if self.wake_spotter is None or self.state not in (DeviceState.IDLE, DeviceState.SPEAKING):
            return
        phrase = self.wake_spotter.feed(pcm)
        if phrase is not None:
            self._spawn(self.wake_word(phrase))
