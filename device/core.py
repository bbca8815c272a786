"""The board's ``Application`` as a pure core: ``core.handle(input) -> actions`` (protocol.md §5).

Inputs are triggers (:class:`ButtonClicked`, :class:`TalkPressed`, :class:`TalkReleased`,
:class:`WakeWordHeard`, :class:`AbortRequested`), channel outcomes (:class:`ChannelReady`,
:class:`ChannelFailed`, :class:`ChannelDropped`), typed server messages
(:class:`MessageReceived`, decoded with ``protocol.messages.decode_server_message``), downlink
audio, playback and uplink marks. Every input carries ``now_s`` (monotonic seconds), so the core
reads no clock and runs no I/O: the async shell (:mod:`device.controller`) executes the actions.

Rules, each a few lines below:

* states move only along the firmware's whitelist (:func:`device.state.is_allowed`); a refused
  transition (e.g. ``tts start`` while ``connecting``) changes nothing;
* entering ``listening`` sends ``listen start`` and opens the mic, except in auto mode after
  ``speaking``: then only once local playback has drained (the "playback finished" signal);
  entering ``speaking`` resets the decoder and (not in realtime mode) closes the mic;
* the channel is lazy: a trigger while idle opens it when it is closed or stale (no server
  message for ``channel_timeout_s``, §3.8), and the trigger completes on :class:`ChannelReady`;
* downlink audio is played only while ``speaking``; frames after ``tts stop`` count as stale;
* a click while speaking sends ``abort`` and changes nothing locally.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from device.core_actions import (
    Action,
    AnswerMcp,
    ApplyIotCommands,
    CloseChannel,
    CloseMic,
    ConfigureDecoder,
    Emit,
    OpenChannel,
    OpenMic,
    PlayAudio,
    ResetDecoder,
    Send,
    SendAudio,
    SendIotDescriptors,
    SendIotStates,
    WatchPlayback,
)
from device.core_inputs import (
    AbortRequested,
    Activated,
    AudioReceived,
    ButtonClicked,
    ChannelDropped,
    ChannelFailed,
    ChannelReady,
    HungUp,
    Input,
    McpAnswered,
    MessageReceived,
    PlaybackDrained,
    PoweredOn,
    SpeechSent,
    TalkPressed,
    TalkReleased,
    WakeWordHeard,
)
from device.events import (
    AbortSent,
    AlertShown,
    ChannelClosed,
    ChannelOpened,
    ChannelOpenFailed,
    DeviceEvent,
    EmotionChanged,
    ListenStarted,
    RebootRequested,
    ReplyAudioStarted,
    SentenceStarted,
    SpeechEnded,
    StateChanged,
    SttReceived,
    TtsStateChanged,
    TurnEnded,
)
from device.metrics import TurnTimer
from device.state import is_allowed
from protocol.enums import AbortReason, DeviceState, ListenMode
from protocol.messages import (
    Abort,
    Alert,
    DeviceMcp,
    IotCommands,
    ListenDetect,
    ListenStart,
    ListenStop,
    Llm,
    ServerMcp,
    Stt,
    System,
    TtsSentenceStart,
    TtsStart,
    TtsStop,
    WireModel,
)

logger = logging.getLogger(__name__)
S = DeviceState

Pending = Literal["click", "press", "wake"]


@dataclass
class BoardCore:
    """One board's conversation state; :meth:`handle` is the only way to change it."""

    session_id: str = ""
    aec: bool = False
    mcp: bool = True
    legacy_iot: bool = False
    channel_timeout_s: float = 120.0
    state: DeviceState = S.UNKNOWN
    mode: ListenMode = ListenMode.AUTO
    channel: Literal["closed", "opening", "open"] = "closed"
    last_server_s: float = 0.0
    mic_on: bool = False
    drain_pending: bool = False
    emotion: str = "neutral"
    turns: list[TurnTimer] = field(default_factory=list)
    _pending: Pending | None = None
    _wake: WakeWordHeard | None = None
    _out: list[Action] = field(default_factory=list)

    @property
    def default_mode(self) -> ListenMode:
        return ListenMode.REALTIME if self.aec else ListenMode.AUTO

    @property
    def turn(self) -> TurnTimer:
        """The current turn (one per ``listen start``)."""
        if not self.turns:
            self.turns.append(TurnTimer())
        return self.turns[-1]

    def channel_usable(self, now_s: float) -> bool:
        """Open and a server message within ``channel_timeout_s`` (the 120 s rule)."""
        if self.channel != "open":
            return False
        if now_s - self.last_server_s > self.channel_timeout_s:
            logger.info(
                "channel stale (%.1f s since the last server message)", now_s - self.last_server_s
            )
            return False
        return True

    def handle(self, event: Input) -> list[Action]:
        """Apply one input; the actions to run, in order."""
        self._out = []
        handler = getattr(self, f"_on_{type(event).__name__}")
        handler(event)
        return self._out

    # ------------------------------------------------------------------ helpers
    def _do(self, *actions: Action) -> None:
        self._out.extend(actions)

    def _emit(self, event: DeviceEvent) -> None:
        self._out.append(Emit(event))

    def _send(self, message: WireModel) -> None:
        self._out.append(Send(message))

    def _set_state(self, new: DeviceState, now_s: float) -> bool:
        old = self.state
        if new == old:
            return True
        if not is_allowed(old, new):
            logger.warning("invalid state transition %s -> %s refused", old.value, new.value)
            return False
        self.state = new
        self._emit(StateChanged(old.value, new.value))
        if new == S.IDLE:
            self._mic(False)
            self.drain_pending = False
        elif new == S.SPEAKING:
            if self.mode != ListenMode.REALTIME:
                self._mic(False)
            self.drain_pending = False
            self._do(ResetDecoder())
        elif new == S.LISTENING:
            if self.legacy_iot:
                self._do(SendIotStates(delta=True))  # IoT states go out before listen start
            if not self.mic_on:
                if self.mode == ListenMode.AUTO and old == S.SPEAKING:
                    self.drain_pending = True
                    self._do(WatchPlayback())
                else:
                    self._start_listening(now_s)
        return True

    def _mic(self, on: bool) -> None:
        if on != self.mic_on:
            self.mic_on = on
            self._do(OpenMic() if on else CloseMic())

    def _start_listening(self, now_s: float) -> None:
        self.turns.append(TurnTimer(index=len(self.turns)))
        self._send(ListenStart(session_id=self.session_id, mode=self.mode))
        self._mic(True)
        self._emit(ListenStarted(self.mode.value))

    def _abort(self, reason: AbortReason | None, now_s: float) -> None:
        self.turn.abort_sent = now_s
        self._send(Abort(session_id=self.session_id, reason=reason.value if reason else None))
        self._emit(AbortSent(reason.value if reason else None))

    def _connect(self, pending: Pending, now_s: float) -> None:
        """Idle with no usable channel: connecting, then finish ``pending`` on ChannelReady."""
        if self.channel == "open":
            self._do(CloseChannel())
        self.channel = "opening"
        self._pending = pending
        self._set_state(S.CONNECTING, now_s)
        self._do(OpenChannel())

    def _close_channel(self) -> None:
        if self.channel != "closed":
            self.channel = "closed"
            self._do(CloseChannel())

    def _begin_wake(self, wake: WakeWordHeard) -> None:
        self._do(SendAudio(wake.preroll))
        self._send(ListenDetect(session_id=self.session_id, text=wake.text))
        self.mode = self.default_mode
        self._set_state(S.LISTENING, wake.now_s)

    # ------------------------------------------------------------------ lifecycle
    def _on_PoweredOn(self, ev: PoweredOn) -> None:
        self._set_state(S.STARTING, ev.now_s)
        self._set_state(S.ACTIVATING, ev.now_s)

    def _on_Activated(self, ev: Activated) -> None:
        self._set_state(S.IDLE, ev.now_s)

    # ------------------------------------------------------------------ triggers
    def _on_ButtonClicked(self, ev: ButtonClicked) -> None:
        st = self.state
        if st == S.ACTIVATING:
            self._set_state(S.IDLE, ev.now_s)
        elif st == S.IDLE:
            if not self.channel_usable(ev.now_s):
                self._connect("click", ev.now_s)
                return
            self.mode = self.default_mode
            self._set_state(S.LISTENING, ev.now_s)
        elif st == S.SPEAKING:
            self._abort(None, ev.now_s)
        elif st == S.LISTENING:
            self._close_channel()
            self._set_state(S.IDLE, ev.now_s)

    def _on_TalkPressed(self, ev: TalkPressed) -> None:
        st = self.state
        if st == S.ACTIVATING:
            self._set_state(S.IDLE, ev.now_s)
            return
        if st == S.IDLE:
            if not self.channel_usable(ev.now_s):
                self._connect("press", ev.now_s)
                return
        elif st == S.SPEAKING:
            self._abort(None, ev.now_s)
        else:
            return
        self.mode = ListenMode.MANUAL
        self._set_state(S.LISTENING, ev.now_s)

    def _on_TalkReleased(self, ev: TalkReleased) -> None:
        if self.state == S.LISTENING:
            self._send(ListenStop(session_id=self.session_id))
            self._set_state(S.IDLE, ev.now_s)

    def _on_WakeWordHeard(self, ev: WakeWordHeard) -> None:
        st = self.state
        if st == S.IDLE:
            if not self.channel_usable(ev.now_s):
                self._wake = ev
                self._connect("wake", ev.now_s)
                return
            self._begin_wake(ev)
        elif st == S.SPEAKING:
            self._abort(AbortReason.WAKE_WORD_DETECTED, ev.now_s)
            self.mode = self.default_mode
            self._set_state(S.LISTENING, ev.now_s)
        elif st == S.LISTENING:
            self._abort(AbortReason.WAKE_WORD_DETECTED, ev.now_s)
            self._start_listening(ev.now_s)
        elif st == S.ACTIVATING:
            self._set_state(S.IDLE, ev.now_s)

    def _on_HungUp(self, ev: HungUp) -> None:
        self._close_channel()
        if self.state in (S.CONNECTING, S.LISTENING, S.SPEAKING):
            self._set_state(S.IDLE, ev.now_s)

    def _on_AbortRequested(self, ev: AbortRequested) -> None:
        if self.channel == "open":
            self._abort(ev.reason, ev.now_s)

    # ------------------------------------------------------------------ channel
    def _on_ChannelReady(self, ev: ChannelReady) -> None:
        self.channel, self.last_server_s = "open", ev.now_s
        self.session_id = ev.session_id
        self._emit(ChannelOpened(ev.session_id, ev.sample_rate_hz))
        self._do(ConfigureDecoder(ev.sample_rate_hz, ev.frame_duration_ms))
        if self.legacy_iot:
            self._do(SendIotDescriptors(), SendIotStates(delta=False))
        pending, wake = self._pending, self._wake
        self._pending = self._wake = None
        if self.state != S.CONNECTING:
            return
        if pending == "wake" and wake is not None:
            self._begin_wake(wake)
        elif pending == "press":
            self.mode = ListenMode.MANUAL
            self._set_state(S.LISTENING, ev.now_s)
        else:
            self.mode = self.default_mode
            self._set_state(S.LISTENING, ev.now_s)

    def _on_ChannelFailed(self, ev: ChannelFailed) -> None:
        self.channel = "closed"
        self._pending = self._wake = None
        self._emit(ChannelOpenFailed("error", ev.error, "sad"))
        self._set_state(S.IDLE, ev.now_s)

    def _on_ChannelDropped(self, ev: ChannelDropped) -> None:
        if self.channel != "open":
            return  # our own hang-up, or a failure ChannelFailed reports
        self.channel = "closed"
        self._emit(ChannelClosed(ev.reason))
        self._set_state(S.IDLE, ev.now_s)

    # ------------------------------------------------------------------ downlink
    def _on_AudioReceived(self, ev: AudioReceived) -> None:
        self.last_server_s = ev.now_s
        turn = self.turn
        if self.state != S.SPEAKING:
            if turn.tts_stop is not None:
                turn.stale_frames += 1
            return
        if turn.first_audio is None:
            turn.first_audio = ev.now_s
            self._emit(ReplyAudioStarted(turn.index))
        self._do(PlayAudio(ev.payload))

    def _on_PlaybackDrained(self, ev: PlaybackDrained) -> None:
        if self.drain_pending and self.state == S.LISTENING and not self.mic_on:
            self.drain_pending = False
            self._start_listening(ev.now_s)

    def _on_SpeechSent(self, ev: SpeechSent) -> None:
        self.turn.speech_end = ev.now_s
        self._emit(SpeechEnded())

    def _on_McpAnswered(self, ev: McpAnswered) -> None:
        if self.channel == "open":
            self._send(DeviceMcp(session_id=self.session_id, payload=ev.payload))

    def _on_MessageReceived(self, ev: MessageReceived) -> None:
        self.last_server_s = ev.now_s
        msg, now = ev.message, ev.now_s
        turn = self.turn
        if isinstance(msg, TtsStart):
            self._set_state(S.SPEAKING, now)
            self._emit(TtsStateChanged("start"))
        elif isinstance(msg, TtsStop):
            if self.state == S.SPEAKING:
                turn.tts_stop = now
                manual = self.mode == ListenMode.MANUAL
                self._set_state(S.IDLE if manual else S.LISTENING, now)
                self._emit(TurnEnded(**turn.result()))
            self._emit(TtsStateChanged("stop"))
        elif isinstance(msg, TtsSentenceStart):
            turn.sentences.append(msg.text)
            self._emit(SentenceStarted(msg.text))
            self._emit(TtsStateChanged("sentence_start"))
        elif isinstance(msg, Stt):
            if turn.stt is None:
                turn.stt, turn.stt_text = now, msg.text
            self._emit(SttReceived(msg.text))
        elif isinstance(msg, Llm):
            self.emotion = msg.emotion
            self._emit(EmotionChanged(msg.emotion))
        elif isinstance(msg, Alert):
            self._emit(AlertShown(msg.status, msg.message, msg.emotion))
        elif isinstance(msg, System):
            self._on_system(msg, now)
        elif isinstance(msg, ServerMcp):
            if self.mcp:
                self._do(AnswerMcp(msg.payload))
        elif isinstance(msg, IotCommands):
            if self.legacy_iot:
                self._do(ApplyIotCommands(msg))
        else:  # hello (handled by the channel), custom, goodbye (not on WebSocket)
            logger.info("ignoring server message of type %r", msg.type)

    def _on_system(self, msg: System, now_s: float) -> None:
        if msg.command != "reboot":
            logger.info("ignoring system command %r", msg.command)
            return
        self._close_channel()
        self._do(ResetDecoder())
        self._set_state(S.IDLE, now_s)
        self._emit(RebootRequested())


__all__ = [
    "AbortRequested",
    "Action",
    "Activated",
    "AnswerMcp",
    "ApplyIotCommands",
    "AudioReceived",
    "BoardCore",
    "ButtonClicked",
    "ChannelDropped",
    "ChannelFailed",
    "ChannelReady",
    "CloseChannel",
    "CloseMic",
    "ConfigureDecoder",
    "Emit",
    "HungUp",
    "Input",
    "McpAnswered",
    "MessageReceived",
    "OpenChannel",
    "OpenMic",
    "PlayAudio",
    "PlaybackDrained",
    "PoweredOn",
    "ResetDecoder",
    "Send",
    "SendAudio",
    "SendIotDescriptors",
    "SendIotStates",
    "SpeechSent",
    "TalkPressed",
    "TalkReleased",
    "WakeWordHeard",
    "WatchPlayback",
]
