"""The simulated user as a pure core: what to press and say next, given what the board reported.

``Conversation(plan, ...)`` is fed :class:`Started`, :class:`Observed` (every device event with a
snapshot of the board) and :class:`TimerFired`; it answers with actions (:class:`Trigger`,
:class:`Speak`, :class:`SetTimer`, :class:`CancelTimer`, :class:`HangUp`, :class:`Finish`).
:mod:`device.scenario` runs it against a controller. Rules that make it speak like a board to any
server:

* after a wake word it waits for the server's greeting to finish (``tts start`` … ``tts stop``
  and the mic open again), or for ``greeting_grace_s`` without one, before speaking;
* the reply to a request is the first ``tts start`` … ``tts stop`` *after* it spoke; a greeting's
  ``tts stop`` is not that reply; a server that starts speaking before the request was out
  (mic closed mid-sentence, e.g. a greeting on ``listen start``) is heard out, then the request is
  said again, once;
* waiting for a reply fails only after ``reply_idle_timeout_s`` with nothing from the server
  (a long reply that keeps streaming audio keeps the turn alive);
* the channel closing, a reboot request or a failed channel open while a reply is due end the
  run at once with a coded error; a close between turns is fine (the next turn reconnects).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from device.errors import (
    ChannelError,
    ChannelLost,
    DeviceError,
    ReplyTimeout,
    ScenarioError,
)
from device.events import (
    ChannelClosed,
    ChannelOpenFailed,
    DeviceEvent,
    ListenStarted,
    RebootRequested,
    ReplyAudioStarted,
    SentenceStarted,
    SpeechEnded,
    SttReceived,
    TtsStateChanged,
    TurnEnded,
)
from protocol.enums import DeviceState

Mode = Literal["click", "wake", "ptt"]
Phase = Literal[
    "idle", "awaiting_mic", "grace", "greeting", "awaiting_reply", "replying", "thinking", "done"
]


@dataclass(frozen=True)
class Board:
    """What the user can see of the board when an input happens."""

    state: DeviceState
    mic_open: bool


@dataclass(frozen=True, kw_only=True)
class Started:
    now_s: float
    board: Board


@dataclass(frozen=True, kw_only=True)
class Observed:
    now_s: float
    board: Board
    event: DeviceEvent


@dataclass(frozen=True, kw_only=True)
class TimerFired:
    now_s: float
    board: Board
    name: str
    server_quiet_s: float
    """Seconds since the server last sent anything (text or audio)."""


ConversationInput = Started | Observed | TimerFired


@dataclass(frozen=True)
class Trigger:
    kind: Literal["click", "wake", "press", "release"]


@dataclass(frozen=True)
class Speak:
    index: int
    """Index into the plan."""
    again: bool = False
    """The server spoke over the first attempt: drop what is left of it, start over."""


@dataclass(frozen=True)
class SetTimer:
    name: str
    delay_s: float


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class HangUp:
    """Let playback drain, leave listening, close the channel."""


@dataclass(frozen=True)
class Finish:
    replies: tuple[dict[str, Any], ...]
    error: DeviceError | None = None


ConversationAction = Trigger | Speak | SetTimer | CancelTimer | HangUp | Finish


@dataclass
class Conversation:
    """Speaks ``plan`` (utterance labels) one after another; see the module docstring."""

    plan: list[str]
    mode: Mode = "click"
    think_s: float = 1.0
    abort_after_s: float | None = None
    greeting_grace_s: float = 1.5
    reply_idle_timeout_s: float = 30.0
    mic_timeout_s: float = 30.0
    phase: Phase = "idle"
    index: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)
    _reply: dict[str, Any] = field(default_factory=dict)
    _woke: bool = False
    _speech_sent: bool = False
    _again: bool = False
    _now_s: float = 0.0
    _reply_since_s: float = 0.0
    _out: list[ConversationAction] = field(default_factory=list)

    def handle(self, inp: ConversationInput) -> list[ConversationAction]:
        self._out = []
        self._now_s = inp.now_s
        if self.phase == "done":
            return []
        if isinstance(inp, Started):
            self._begin_turn(inp.board)
        elif isinstance(inp, TimerFired):
            self._on_timer(inp)
        else:
            self._on_event(inp.event, inp.board)
        return self._out

    # ------------------------------------------------------------------ steps
    @property
    def _label(self) -> str:
        return self.plan[self.index]

    def _begin_turn(self, board: Board) -> None:
        self._woke = False
        if self.mode == "ptt":
            self._await_mic()
            self._out.append(Trigger("press"))
        elif board.state == DeviceState.IDLE:
            self._woke = self.mode == "wake"
            self._await_mic()
            self._out.append(Trigger("wake" if self._woke else "click"))
        elif board.mic_open:
            self._speak()
        else:  # auto mode: the mic reopens with the listen start after playback drained
            self._await_mic()

    def _await_mic(self) -> None:
        self.phase = "awaiting_mic"
        self._out.append(SetTimer("mic", self.mic_timeout_s))

    def _mic_opened(self) -> None:
        self._out.append(CancelTimer("mic"))
        if self._woke:
            self._woke = False
            self.phase = "grace"
            self._out.append(SetTimer("grace", self.greeting_grace_s))
        else:
            self._speak(again=self._again)

    def _speak(self, *, again: bool = False) -> None:
        self.phase = "awaiting_reply"
        self._reply = {"said": self._label, "stt": None, "sentences": []}
        self._reply_since_s = self._now_s
        self._speech_sent = False
        self._out += [Speak(self.index, again), SetTimer("reply_idle", self.reply_idle_timeout_s)]

    def _reply_done(self, ended: TurnEnded) -> None:
        self._out.append(CancelTimer("reply_idle"))
        reply = self._reply
        reply.update(
            stt=reply["stt"] or ended.stt,
            endpoint_ms=ended.endpoint_ms,
            first_audio_ms=ended.first_audio_ms,
            abort_ms=ended.abort_ms,
        )
        self.replies.append(reply)
        self.index += 1
        self._again = False
        if self.index >= len(self.plan):
            self.phase = "done"
            self._out += [HangUp(), Finish(tuple(self.replies))]
        else:
            self.phase = "thinking"
            self._out.append(SetTimer("think", self.think_s))

    def _fail(self, error: DeviceError) -> None:
        self.phase = "done"
        for name in ("mic", "grace", "reply_idle", "think", "barge"):
            self._out.append(CancelTimer(name))
        self._out += [HangUp(), Finish(tuple(self.replies), error)]

    # ------------------------------------------------------------------ inputs
    def _on_timer(self, t: TimerFired) -> None:
        if t.name == "think" and self.phase == "thinking":
            self._begin_turn(t.board)
        elif t.name == "mic" and self.phase == "awaiting_mic":
            self._fail(
                ScenarioError(f"timed out after {self.mic_timeout_s} s waiting for the mic to open")
            )
        elif t.name == "grace" and self.phase == "grace":
            if t.board.mic_open:
                self._speak()
            else:  # a tts start is on its way: wait for it
                self._out.append(SetTimer("grace", self.greeting_grace_s))
        elif t.name == "reply_idle" and self.phase in ("greeting", "awaiting_reply", "replying"):
            quiet_s = min(t.server_quiet_s, t.now_s - self._reply_since_s)
            left = self.reply_idle_timeout_s - quiet_s
            if left > 0:
                self._out.append(SetTimer("reply_idle", left))
            else:
                what = (
                    "the greeting" if self.phase == "greeting" else f"the reply to {self._label!r}"
                )
                self._fail(
                    ReplyTimeout(
                        f"timed out waiting for {what}: the server sent nothing for "
                        f"{self.reply_idle_timeout_s:g} s"
                    )
                )
        elif (
            t.name == "barge" and self.phase == "replying" and t.board.state == DeviceState.SPEAKING
        ):
            self._out.append(Trigger("click"))

    def _on_event(self, ev: DeviceEvent, board: Board) -> None:
        phase = self.phase
        if isinstance(ev, ChannelOpenFailed) and phase == "awaiting_mic":
            self._fail(ChannelError(f"cannot open the audio channel: {ev.message}"))
        elif isinstance(ev, ChannelClosed | RebootRequested):
            if phase in ("awaiting_mic", "grace", "greeting", "awaiting_reply", "replying"):
                why = (
                    "the server asked the board to reboot"
                    if isinstance(ev, RebootRequested)
                    else f"the server closed the channel ({ev.reason})"
                )
                self._fail(ChannelLost(f"{why} before the reply to {self._label!r}"))
        elif isinstance(ev, ListenStarted):
            if phase == "awaiting_mic":
                self._mic_opened()
        elif isinstance(ev, TtsStateChanged) and ev.state == "start":
            if phase == "grace":
                self.phase = "greeting"
                self._reply_since_s = self._now_s
                self._out += [
                    CancelTimer("grace"),
                    SetTimer("reply_idle", self.reply_idle_timeout_s),
                ]
            elif phase == "awaiting_reply":
                cut_off = not self._speech_sent and not board.mic_open and self.mode != "ptt"
                if cut_off and not self._again:  # not an answer: it did not hear us out
                    self.phase, self._again = "greeting", True
                else:
                    self.phase = "replying"
        elif isinstance(ev, TurnEnded):
            if phase == "greeting":
                self._out.append(CancelTimer("reply_idle"))
                self._await_mic()  # speak once the mic reopens after the greeting played out
            elif phase == "replying":
                self._reply_done(ev)
        elif isinstance(ev, SttReceived) and phase in ("awaiting_reply", "replying"):
            if self._reply.get("stt") is None:
                self._reply["stt"] = ev.text
        elif isinstance(ev, SentenceStarted) and phase == "replying":
            self._reply["sentences"].append(ev.text)
        elif isinstance(ev, ReplyAudioStarted) and phase == "replying":
            if self.abort_after_s is not None:
                self._out.append(SetTimer("barge", self.abort_after_s))
        elif isinstance(ev, SpeechEnded) and phase == "awaiting_reply":
            self._speech_sent = True
            if self.mode == "ptt":
                self._out.append(Trigger("release"))
