"""The pure session core of one device connection: events in, actions out.

No I/O, no clock, no event loop: every event carries ``now_s`` and :meth:`SessionCore.handle`
returns the actions to run, in order. The shell (:mod:`.connection`) feeds it from one inbox and
runs the actions. The core is the only place that knows which turn is active, and the only
sender of ``tts start``/``tts stop`` and ``stt``.

Rules (protocol.md §5, §9):

* **Hello.** Until the device's hello only a hello is accepted; none within ``hello_timeout_s``
  closes the socket. The binary version is the hello's ``version``, else the handshake's
  ``Protocol-Version``, else 1; an unsupported one falls back to 1 with a warning.
* **Utterances.** ``listen start`` opens a new utterance (a new *epoch*: audio of older epochs is
  discarded, so a wake-word pre-roll is never transcribed); a running turn is cancelled first.
  ``listen detect`` cancels a running turn and closes the microphone until ``listen start``.
  auto/realtime: the endpointer ends the utterance; manual: ``listen stop`` does.
* **Transcripts.** Text → ``stt`` + a reply. Rejected speech (heard, not understood) → ``stt``
  with what was heard + a spoken "didn't catch that", never acted on. Heard speech on which the
  recogniser failed → a spoken "can't understand speech right now". Nothing usable: in
  auto/realtime keep listening silently (a false trigger that speaks is worse than silence); in
  manual mode the user waits for an answer, so heard speech gets "didn't catch that".
* **Microphone.** auto/manual: closed while the server answers (the board's next
  ``listen start`` opens the next utterance); realtime: stays open. Echo gate: an utterance that
  ends while the server speaks is our own voice and is dropped; the user barges in only with
  ``barge_in_speech_ms`` of sustained speech starting ``echo_guard_s`` after ``tts start``.
* **Replies.** ``tts start`` goes out before the first sentence's audio. A turn that sent
  ``tts start`` ends with exactly one ``tts stop``, whatever failed: after its last sentence has
  been *played* by the board (the player's clock), at once when cancelled (abort, barge-in, a new
  ``listen start``, the socket closing), or when its producer fails or stalls for
  ``reply_timeout_s``. A turn that never spoke sends no ``tts stop`` (a failed one is followed by
  a spoken apology).
* **Slow recognition.** When the transcript of an ended utterance is late
  (``RecognitionSlow``: a busy Whisper, a remote recogniser), a turn says "one moment" and stays
  open (``holding``, no ``tts stop``); the transcript then goes on in that turn (``stt``, the
  answer, one ``tts stop`` at its end). Interrupted, the answer is dropped.
* **Speculation.** A stable partial that is a complete command (the user has gone quiet)
  starts its answer early (``Speculate``) while no turn runs. The turn of the same utterance
  adopts it only if its final text and language are the same; otherwise, or when the utterance
  is over without a turn, it is discarded. Until adopted nothing of it is sent and no device
  tool is called (the shell holds its sentences and gates its tool calls).
* **Idle.** No traffic either way for ``idle_timeout_s`` closes the session; a turn in progress
  (the server speaking) counts as traffic.
* **Shutdown.** The reply in progress may finish within the grace time (then ``tts stop`` at
  once); no new utterance is opened; the session closes with 1001 "going away".
* **MQTT + UDP** (``transport="udp"``, protocol.md §4). The server hello says ``udp`` and carries
  the ``udp`` section (server, port, key, nonce); the audio is raw Opus in both directions
  whatever the hello's ``version`` (hard-coded 3 there). A device ``goodbye`` ends the session
  without an answer; every other close is announced by the channel with a ``goodbye``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from protocol.audio import AudioParams
from protocol.binary import decode_frame
from protocol.enums import ListenMode
from protocol.errors import BinaryFrameError
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
    Llm,
    ServerHello,
    Stt,
    TtsStart,
    TtsStop,
    UdpParams,
)
from server.errors import ErrorCode
from server.session import events as ev
from server.session.replies import Fixed, base_language, fixed_text

HELLO_TIMER, IDLE_TIMER, REPLY_TIMER, SHUTDOWN_TIMER = "hello", "idle", "reply", "shutdown"
GOING_AWAY = ev.Close(1001, "server shutting down")


@dataclass(frozen=True)
class CoreSettings:
    """What the core needs to know; times in seconds."""

    session_id: str
    downlink_sample_rate_hz: int = 24000
    downlink_frame_duration_ms: int = 60
    hello_timeout_s: float = 10.0
    idle_timeout_s: float = 120.0
    reply_timeout_s: float = 30.0
    """A reply that produces nothing for this long (a hung tool or LLM) is ended."""
    barge_in_speech_ms: float = 480.0
    echo_guard_s: float = 0.3
    language: str = "en"
    """Reply language when the recogniser does not tell."""
    speculate: bool = True
    """Start the answer on a stable complete-command partial, before the endpoint."""
    transport: str = "websocket"
    """``websocket``, or ``udp`` for an MQTT + UDP session."""
    udp: UdpParams | None = None
    """The server hello's ``udp`` section (``transport="udp"`` only)."""


class Phase(Enum):
    AWAITING_HELLO = "awaiting-hello"
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class TurnState:
    """The one active turn."""

    turn_id: int
    fixed: bool
    speaking: bool = False
    spoke_at_s: float = 0.0
    ready: int = 0
    """Sentences handed to the player."""
    played: int = 0
    """Sentences the board has played to their end."""
    produced: bool = False
    """The producers have ended (all sentences ready, or one failed while speaking)."""
    producers: int = 1
    """Producers of this turn still running (a "one moment" turn gets a second one)."""
    holding: bool = False
    """A "one moment" turn waiting for its transcript: it does not end when played out."""


class SessionCore:
    """One session's rules; feed :meth:`handle` and run what it returns."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.phase = Phase.AWAITING_HELLO
        self.version = 1
        self.mode = ListenMode.AUTO
        self.listening = False
        self.epoch = 0
        self.turn: TurnState | None = None
        self.last_turn_id = 0
        self.mcp = False
        self.draining = False
        """The server is shutting down: no new utterances, close after the current reply."""
        self._header_version: int | None = None
        self._last_activity_s = 0.0
        self.speculation: tuple[int, str, str] | None = None
        """(epoch, text, language) of the answer being prepared speculatively."""
        self.awaiting: int | None = None
        """Epoch of the utterance a "one moment" turn is waiting for."""
        self.last_language = base_language(settings.language)
        """Language of the last transcript (the "one moment" is said in it)."""

    # ------------------------------------------------------------------ queries (for the shell)

    def is_current(self, turn_id: int) -> bool:
        """Whether ``turn_id`` is the active turn (checked right before every audio write)."""
        return self.turn is not None and self.turn.turn_id == turn_id

    # ------------------------------------------------------------------ the one entry point

    def handle(self, event: ev.Event) -> list[ev.Action]:
        """Apply one event; returns the actions to run, in order."""
        if self.phase is Phase.CLOSED:
            return []
        out: list[ev.Action] = []
        match event:
            case ev.SessionOpened(now_s=now, header_version=version):
                self._header_version = version
                self._last_activity_s = now
                out.append(ev.SetTimer(HELLO_TIMER, now + self.settings.hello_timeout_s))
            case ev.MessageReceived(message=message, now_s=now):
                self._last_activity_s = now
                self._on_message(message, now, out)
            case ev.BadMessage(code=code, detail=detail, now_s=now):
                self._last_activity_s = now
                out.append(ev.CountError(code, f"ignored text message ({code}): {detail}"))
            case ev.BinaryReceived(data=data, now_s=now):
                self._last_activity_s = now
                self._on_binary(data, now, out)
            case ev.ChannelLost():
                self._cancel(out)
                self.phase = Phase.CLOSED
            case ev.TimerFired(name=name, now_s=now):
                self._on_timer(name, now, out)
            case ev.ShutdownRequested(grace_s=grace, now_s=now):
                self._on_shutdown(grace, now, out)
            case ev.ToolsChanged():
                out.append(ev.RefreshGrammar())
            case ev.SpeechProgressed(epoch=epoch, speech_run_ms=run_ms, now_s=now):
                self._on_speech_progress(epoch, run_ms, now, out)
            case ev.PartialStable():
                self._on_partial_stable(event, out)
            case ev.RecognitionSlow(epoch=epoch, now_s=now):
                self._on_recognition_slow(epoch, now, out)
            case ev.UtteranceEnded():
                self._on_utterance(event, out)
            case ev.EmotionChosen(turn_id=turn_id, emotion=emotion, now_s=now):
                if self.is_current(turn_id):
                    out.append(ev.Send(Llm(emotion=emotion)))
                    self._progress(now, out)
            case ev.SentenceReady():
                self._on_sentence_ready(event, out)
            case ev.SentencePlayed(turn_id=turn_id, now_s=now):
                if self.turn is not None and self.is_current(turn_id):
                    self.turn.played += 1
                    self._last_activity_s = now
                    self._progress(now, out)
                    self._maybe_finish(out)
            case ev.ReplyEnded(turn_id=turn_id):
                if self.turn is not None and self.is_current(turn_id):
                    self.turn.producers -= 1
                    self.turn.produced = self.turn.producers <= 0
                    self._maybe_finish(out)
            case ev.ReplyFailed(turn_id=turn_id, code=code, now_s=now):
                if self.is_current(turn_id):
                    out.append(ev.CountError(code, f"reply {turn_id} failed ({code})"))
                    self._fail_turn(now, out)
        if self.speculation is not None and (
            self.speculation[0] != self.epoch or self.phase is not Phase.OPEN
        ):
            self._discard_speculation(out)  # its utterance is over and it was not adopted
        return out

    # ------------------------------------------------------------------ device messages

    def _on_message(self, message: object, now: float, out: list[ev.Action]) -> None:
        if isinstance(message, DeviceHello):
            self._on_hello(message, now, out)
            return
        if self.phase is not Phase.OPEN:
            out.append(ev.Log(logging.INFO, f"{type(message).__name__} before hello; ignored"))
            return
        match message:
            case ListenStart() if self.draining:
                out.append(ev.Log(logging.INFO, "listen start while shutting down; ignored"))
            case ListenStart(mode=mode):
                self._cancel(out)
                self._open(mode, out)
            case ListenStop():
                if self.listening:
                    out.append(ev.FinishUtterance(self.epoch))
                    self.listening = False
            case ListenDetect(text=text):
                out.append(ev.Log(logging.INFO, f"wake word {text!r}"))
                self._cancel(out)
                self._close_mic(out)
            case Abort(reason=reason):
                out.append(ev.Log(logging.INFO, f"abort ({reason or 'button'})"))
                self._cancel(out)
                self._discard_speculation(out)
            case DeviceMcp() | IotDescriptors() | IotStates():
                out.append(ev.FeedTools(message))
            case DeviceGoodbye() if self.settings.transport == "udp":
                out.append(ev.Log(logging.INFO, "device goodbye; session ends"))
                self._cancel(out)
                out.append(ev.Close(1000, "device goodbye"))
                self.phase = Phase.CLOSED
            case DeviceGoodbye():
                out.append(ev.Log(logging.INFO, "goodbye over WebSocket; ignored"))
            case _:
                out.append(ev.Log(logging.INFO, f"ignored {type(message).__name__}"))

    def _on_hello(self, hello: DeviceHello, now: float, out: list[ev.Action]) -> None:
        if "version" in hello.model_fields_set:
            version = hello.version
        else:
            version = self._header_version or 1
        if self.settings.transport == "udp":
            version = 1  # UDP datagrams carry raw Opus; the MQTT hello's version means nothing
        elif version not in (1, 2, 3):
            out.append(ev.Log(logging.WARNING, f"unsupported binary version {version}; using 1"))
            out.append(ev.CountError(ErrorCode.UNSUPPORTED_VERSION))
            version = 1
        self.version = version
        s = self.settings
        out.append(
            ev.Send(
                ServerHello(
                    transport=s.transport,
                    session_id=s.session_id,
                    audio_params=AudioParams(
                        sample_rate=s.downlink_sample_rate_hz,
                        frame_duration=s.downlink_frame_duration_ms,
                    ),
                    udp=s.udp,
                )
            )
        )
        up = hello.audio_params
        features = hello.features.model_dump(exclude_none=True) if hello.features else {}
        out.append(
            ev.Log(
                logging.INFO,
                f"hello: binary v{version}, uplink {up.sample_rate} Hz/{up.frame_duration} ms, "
                f"features {features}",
            )
        )
        if self.phase is Phase.AWAITING_HELLO:
            self.phase = Phase.OPEN
            out.append(ev.CancelTimer(HELLO_TIMER))
            out.append(ev.SetTimer(IDLE_TIMER, now + s.idle_timeout_s))
        if hello.features is not None and hello.features.mcp and not self.mcp:
            self.mcp = True
            out.append(ev.StartToolDiscovery())

    def _on_binary(self, data: bytes, now: float, out: list[ev.Action]) -> None:
        if self.phase is not Phase.OPEN:
            out.append(ev.DropAudio("before-hello"))
            return
        if not self.listening:
            out.append(ev.DropAudio(ErrorCode.NOT_LISTENING))
            return
        try:
            frame = decode_frame(data, self.version)
        except BinaryFrameError as exc:
            out.append(ev.CountError(exc.code, f"dropped binary frame ({exc.code}): {exc}"))
            out.append(ev.DropAudio(exc.code))
            return
        if not frame.payload:
            out.append(ev.DropAudio(ErrorCode.EMPTY_FRAME))
            return
        out.append(ev.FeedAudio(self.epoch, frame.payload, now))

    # ------------------------------------------------------------------ timers

    def _on_timer(self, name: str, now: float, out: list[ev.Action]) -> None:
        s = self.settings
        if name == HELLO_TIMER and self.phase is Phase.AWAITING_HELLO:
            out.append(ev.Log(logging.INFO, f"no hello within {s.hello_timeout_s:.1f} s; closing"))
            out.append(ev.Close(1000, "hello timeout"))
            self.phase = Phase.CLOSED
        elif name == IDLE_TIMER:
            due = self._last_activity_s + s.idle_timeout_s
            if self.turn is not None:  # a reply in progress is traffic (server → device)
                due = max(due, now + s.idle_timeout_s)
            if now < due:
                out.append(ev.SetTimer(IDLE_TIMER, due))
                return
            out.append(ev.Log(logging.INFO, f"idle for {s.idle_timeout_s:.0f} s; closing"))
            self._cancel(out)
            out.append(ev.Close(1000, "idle timeout"))
            self.phase = Phase.CLOSED
        elif name == SHUTDOWN_TIMER and self.draining:
            self._cancel(out)
            self._close(GOING_AWAY, out)
        elif name == REPLY_TIMER and self.turn is not None and not self.turn.produced:
            out.append(ev.CountError("reply-timeout", f"reply stalled {s.reply_timeout_s:.0f} s"))
            self._fail_turn(now, out)

    def _on_shutdown(self, grace_s: float, now: float, out: list[ev.Action]) -> None:
        self.draining = True
        if self.listening:
            self._close_mic(out)
        if self.turn is None or not self.turn.speaking:
            self._cancel(out)
            self._close(GOING_AWAY, out)
        else:
            out.append(ev.SetTimer(SHUTDOWN_TIMER, now + grace_s))

    def _close(self, close: ev.Close, out: list[ev.Action]) -> None:
        out.append(close)
        self.phase = Phase.CLOSED

    def _progress(self, now: float, out: list[ev.Action]) -> None:
        out.append(ev.SetTimer(REPLY_TIMER, now + self.settings.reply_timeout_s))

    # ------------------------------------------------------------------ speech in

    def _on_speech_progress(
        self, epoch: int, run_ms: float, now: float, out: list[ev.Action]
    ) -> None:
        turn, s = self.turn, self.settings
        if (
            turn is not None
            and turn.speaking
            and self.mode == ListenMode.REALTIME
            and self.listening
            and epoch == self.epoch
            and run_ms >= s.barge_in_speech_ms
            and now - turn.spoke_at_s >= s.echo_guard_s
        ):
            out.append(ev.Log(logging.INFO, f"barge-in: {run_ms:.0f} ms of speech while speaking"))
            self._cancel(out)

    def _on_partial_stable(self, p: ev.PartialStable, out: list[ev.Action]) -> None:
        if (
            not self.settings.speculate
            or p.epoch != self.epoch
            or self.phase is not Phase.OPEN
            or self.turn is not None
            or not self.listening
            or self.draining
        ):
            return
        text = p.text.strip()
        language = base_language(p.language, base_language(self.settings.language))
        if not text or self.speculation == (p.epoch, text, language):
            return
        self._discard_speculation(out)
        self.speculation = (p.epoch, text, language)
        out.append(ev.Speculate(text, language, self.version))

    def _discard_speculation(self, out: list[ev.Action]) -> None:
        if self.speculation is not None:
            self.speculation = None
            out.append(ev.DiscardSpeculation())

    def _on_recognition_slow(self, epoch: int, now: float, out: list[ev.Action]) -> None:
        """Say "one moment" in a turn that stays open for the answer (no ``tts stop`` between
        them, so the board keeps speaking and does not reopen its microphone in between)."""
        if (
            epoch != self.epoch
            or self.phase is not Phase.OPEN
            or self.turn is not None
            or self.draining
        ):
            return
        self.awaiting = epoch
        self._after_utterance(out)
        language = self.last_language
        moment = fixed_text(Fixed.ONE_MOMENT, language)
        self._start(moment, True, language, ev.UtteranceEnded(epoch, "", True, now), out, hold=True)

    def _on_awaited(self, u: ev.UtteranceEnded, out: list[ev.Action]) -> None:
        """The transcript a "one moment" turn waited for: go on in that turn with the answer."""
        self.awaiting = None
        turn = self.turn
        if turn is None or not turn.holding:
            return  # the "one moment" was interrupted: the answer is no longer wanted
        turn.holding = False
        text = u.text.strip()
        language = base_language(u.language, self.last_language)
        if u.language:
            self.last_language = language
        if u.rejected and u.heard_speech:
            if text:
                out.append(ev.Send(Stt(text=text)))
            self._continue(
                fixed_text(Fixed.DIDNT_CATCH_THAT, language), True, language, u.now_s, out
            )
        elif text:
            out.append(ev.Send(Stt(text=text)))
            self._continue(text, False, language, u.now_s, out)
        elif u.heard_speech and u.asr_failed:
            which = Fixed.BUSY if u.asr_busy else Fixed.CANNOT_LISTEN
            self._continue(fixed_text(which, language), True, language, u.now_s, out)
        else:
            self._maybe_finish(out)  # nothing to add after all

    def _continue(
        self, text: str, fixed: bool, language: str, now: float, out: list[ev.Action]
    ) -> None:
        turn = self.turn
        assert turn is not None
        turn.producers += 1
        turn.produced, turn.fixed = False, fixed
        out.append(ev.ContinueReply(turn.turn_id, text, fixed, language, self.version, 1))
        self._progress(now, out)

    def _on_utterance(self, u: ev.UtteranceEnded, out: list[ev.Action]) -> None:
        if u.epoch == self.awaiting and self.phase is Phase.OPEN:
            self._on_awaited(u, out)
            return
        if u.epoch != self.epoch or self.phase is not Phase.OPEN:
            return  # stale: a newer utterance was opened meanwhile
        realtime = self.mode == ListenMode.REALTIME
        if self.turn is not None:
            # Only realtime listens while speaking: this utterance never passed the echo gate,
            # so it is our own voice. Keep listening.
            if realtime:
                self._open(self.mode, out)
            return
        text = u.text.strip()
        language = base_language(u.language, base_language(self.settings.language))
        if u.language:
            self.last_language = language
        if u.rejected and u.heard_speech:
            if text:
                out.append(ev.Send(Stt(text=text)))
            self._after_utterance(out)
            self._start(fixed_text(Fixed.DIDNT_CATCH_THAT, language), True, language, u, out)
        elif text:
            out.append(ev.Send(Stt(text=text)))
            self._after_utterance(out)
            self._start(text, False, language, u, out)
        elif u.heard_speech and u.asr_failed:  # the user spoke and must not meet silence
            self._after_utterance(out)
            which = Fixed.BUSY if u.asr_busy else Fixed.CANNOT_LISTEN
            self._start(fixed_text(which, language), True, language, u, out)
        elif self.mode == ListenMode.MANUAL:
            self._close_mic(out)
            if u.heard_speech:
                self._start(fixed_text(Fixed.DIDNT_CATCH_THAT, language), True, language, u, out)
        else:
            self._open(self.mode, out)

    # ------------------------------------------------------------------ replies

    def _start(
        self,
        text: str,
        fixed: bool,
        language: str,
        u: ev.UtteranceEnded,
        out: list[ev.Action],
        *,
        hold: bool = False,
    ) -> None:
        """Start a turn answering ``text``; ``hold``: it stays open after it is played (a
        "one moment" waiting for its transcript)."""
        adopt = not fixed and self.speculation == (u.epoch, text, language)
        if adopt:
            self.speculation = None
        else:
            self._discard_speculation(out)
        self.last_turn_id += 1
        self.turn = TurnState(self.last_turn_id, fixed, holding=hold)
        out.append(
            ev.StartReply(
                self.last_turn_id, text, fixed, language, self.version, dict(u.marks), adopt
            )
        )
        self._progress(u.now_s, out)

    def _on_sentence_ready(self, r: ev.SentenceReady, out: list[ev.Action]) -> None:
        turn = self.turn
        if turn is None or turn.turn_id != r.turn_id:
            return  # a cancelled reply's late sentence: never heard
        if not turn.speaking:
            turn.speaking, turn.spoke_at_s = True, r.now_s
            out.append(ev.Send(TtsStart()))
        turn.ready += 1
        out.append(ev.PlaySentence(r.turn_id, r.seq, r.text, r.audio))
        self._progress(r.now_s, out)

    def _maybe_finish(self, out: list[ev.Action]) -> None:
        turn = self.turn
        if turn is None or turn.holding or not turn.produced or turn.played < turn.ready:
            return
        self._end_turn(out, completed=True)

    def _fail_turn(self, now: float, out: list[ev.Action]) -> None:
        """The producer failed or stalled: stop it; speak an apology if nothing was spoken."""
        turn = self.turn
        if turn is None:
            return
        out.append(ev.CancelReply(turn.turn_id))
        apologise = not turn.speaking and not turn.fixed and not self.draining
        self._end_turn(out, completed=False, reopen=not apologise)
        if apologise:
            language = base_language(self.settings.language)
            text = fixed_text(Fixed.SOMETHING_WENT_WRONG, language)
            self._start(text, True, language, ev.UtteranceEnded(self.epoch, "", False, now), out)

    def _end_turn(self, out: list[ev.Action], *, completed: bool, reopen: bool = True) -> None:
        turn = self.turn
        if turn is None:
            return
        if turn.speaking:
            out.append(ev.Send(TtsStop()))
        out.append(ev.CancelTimer(REPLY_TIMER))
        out.append(ev.ReplyFinished(turn.turn_id, completed))
        self.turn = None
        if self.draining:
            self._close(GOING_AWAY, out)
            return
        if reopen and not turn.speaking and self.mode != ListenMode.MANUAL and not self.listening:
            self._open(self.mode, out)  # nothing was said: the board is still listening

    def _cancel(self, out: list[ev.Action]) -> None:
        self.awaiting = None  # an interrupted "one moment": its answer is not wanted
        turn = self.turn
        if turn is not None:
            out.append(ev.CancelReply(turn.turn_id))
            if turn.speaking:
                out.append(ev.Send(TtsStop()))
            out.append(ev.CancelTimer(REPLY_TIMER))
            out.append(ev.ReplyFinished(turn.turn_id, False))
            self.turn = None

    # ------------------------------------------------------------------ microphone

    def _open(self, mode: ListenMode, out: list[ev.Action]) -> None:
        if self.draining:
            return
        self.epoch += 1
        self.mode, self.listening = mode, True
        out.append(ev.OpenUtterance(self.epoch, mode))

    def _close_mic(self, out: list[ev.Action]) -> None:
        self.epoch += 1
        self.listening = False
        out.append(ev.CloseMicrophone())

    def _after_utterance(self, out: list[ev.Action]) -> None:
        if self.mode == ListenMode.REALTIME:
            self._open(self.mode, out)
        else:
            self._close_mic(out)
