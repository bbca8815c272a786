"""The pure turn/session state machine of one connection: ``(state, event) -> (state, actions)``.

Nothing here does I/O or reads a clock: events carry the times they need (seconds on the
caller's monotonic timeline), so every rule tests without an event loop.

Rules (protocol.md §5, §9):

* ``listen start`` opens a new utterance (a new *epoch*: audio of older epochs is discarded, so a
  wake-word pre-roll sent before ``listen detect``/``listen start`` is never transcribed). A turn
  still running is cancelled first (barge-in), ``tts stop`` follows at once.
* ``listen detect`` cancels a running turn and closes the microphone until ``listen start``.
* auto/realtime: the server's endpointer ends the utterance; manual: ``listen stop`` ends it.
* A final transcript with text → ``stt`` + a new turn. An empty one (noise): in auto/realtime the
  device keeps streaming, so we keep listening silently (a false trigger that speaks is worse than
  silence); in manual mode the user pressed and released a button and waits for an answer, so if
  speech was heard but not understood we say so (a spoken "didn't catch that"), and if nothing
  was heard we stay silent.
* auto/manual: the microphone is closed while the server answers; the device's next
  ``listen start`` (sent after playback drains) opens the next utterance.
* realtime: the microphone stays open during the answer. Echo gate: an utterance that starts and
  ends while the server speaks is dropped (it is most likely our own voice); the user barges in
  only with sustained speech (``BargeInSpeech``, decided by the caller with a higher bar than a
  normal utterance start), which cancels the turn and lets that utterance through.
* ``abort`` cancels the running turn (``tts stop`` at once); in realtime mode listening goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from protocol.enums import ListenMode

DIDNT_CATCH_THAT = "Sorry, I didn't catch that."
CANNOT_LISTEN = "Sorry, I can't understand speech right now. Please try again in a moment."
"""Spoken when speech was heard but the recogniser failed (e.g. every decoder busy)."""


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ListenStarted:
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class ListenDetected:
    text: str


@dataclass(frozen=True, slots=True)
class ListenStopped:
    pass


@dataclass(frozen=True, slots=True)
class Aborted:
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class UtteranceEnded:
    """The endpointer or ``listen stop`` ended utterance ``epoch``; ASR gave ``text``."""

    epoch: int
    text: str
    heard_speech: bool
    asr_failed: bool = False
    """The recogniser failed on this utterance (the text is empty or partial)."""


@dataclass(frozen=True, slots=True)
class BargeInSpeech:
    """Sustained user speech (past the echo gate) in utterance ``epoch`` while a turn runs."""

    epoch: int


@dataclass(frozen=True, slots=True)
class TurnFinished:
    turn_id: int


Event = (
    ListenStarted
    | ListenDetected
    | ListenStopped
    | Aborted
    | UtteranceEnded
    | BargeInSpeech
    | TurnFinished
)


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class OpenUtterance:
    """Start feeding uplink audio of ``epoch`` to VAD/ASR (resetting them)."""

    epoch: int
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Finalise ASR for ``epoch`` (manual ``listen stop``)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class CloseMicrophone:
    """Drop uplink audio until the next :class:`OpenUtterance`."""


@dataclass(frozen=True, slots=True)
class SendStt:
    text: str


@dataclass(frozen=True, slots=True)
class StartTurn:
    """Answer ``text`` (``fixed``: speak it verbatim instead of asking the dialogue)."""

    turn_id: int
    text: str
    fixed: bool = False


@dataclass(frozen=True, slots=True)
class CancelTurn:
    """Cancel ``turn_id`` now, flush its audio and send ``tts stop``."""

    turn_id: int


Action = OpenUtterance | FinishUtterance | CloseMicrophone | SendStt | StartTurn | CancelTurn


# ----------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class SessionState:
    mode: ListenMode = ListenMode.AUTO
    listening: bool = False
    """Uplink audio of ``epoch`` is being transcribed."""
    epoch: int = 0
    turn_id: int | None = None
    """The running turn, if any."""
    last_turn_id: int = 0


def _cancel(state: SessionState, actions: list[Action]) -> SessionState:
    if state.turn_id is not None:
        actions.append(CancelTurn(state.turn_id))
        return replace(state, turn_id=None)
    return state


def _open(state: SessionState, mode: ListenMode, actions: list[Action]) -> SessionState:
    epoch = state.epoch + 1
    actions.append(OpenUtterance(epoch, mode))
    return replace(state, mode=mode, listening=True, epoch=epoch)


def _close_mic(state: SessionState, actions: list[Action]) -> SessionState:
    actions.append(CloseMicrophone())
    return replace(state, listening=False, epoch=state.epoch + 1)


def _start_turn(state: SessionState, text: str, fixed: bool, actions: list[Action]) -> SessionState:
    turn_id = state.last_turn_id + 1
    actions.append(StartTurn(turn_id, text, fixed))
    return replace(state, turn_id=turn_id, last_turn_id=turn_id)


def transition(state: SessionState, event: Event) -> tuple[SessionState, list[Action]]:
    """Apply one event; returns the new state and the actions to run, in order."""
    actions: list[Action] = []
    match event:
        case ListenStarted(mode=mode):
            state = _cancel(state, actions)
            state = _open(state, mode, actions)
        case ListenDetected():
            state = _cancel(state, actions)
            state = _close_mic(state, actions)
        case ListenStopped():
            if state.listening:
                actions.append(FinishUtterance(state.epoch))
                state = replace(state, listening=False)
        case Aborted():
            state = _cancel(state, actions)
        case BargeInSpeech(epoch=epoch):
            if epoch == state.epoch and state.listening and state.mode == ListenMode.REALTIME:
                state = _cancel(state, actions)
        case UtteranceEnded(epoch=epoch, text=text, heard_speech=heard, asr_failed=failed):
            if epoch != state.epoch:
                return state, actions  # stale: a newer utterance was opened meanwhile
            realtime = state.mode == ListenMode.REALTIME
            if state.turn_id is not None:
                # Only realtime listens while speaking: this utterance never passed the echo
                # gate, so it is our own voice. Keep listening.
                return _open(state, state.mode, actions) if realtime else state, actions
            text = text.strip()
            if text:
                actions.append(SendStt(text))
                state = (
                    _open(state, state.mode, actions) if realtime else _close_mic(state, actions)
                )
                state = _start_turn(state, text, False, actions)
            elif heard and failed:  # the user spoke and must not be met with silence
                state = (
                    _open(state, state.mode, actions) if realtime else _close_mic(state, actions)
                )
                state = _start_turn(state, CANNOT_LISTEN, True, actions)
            elif state.mode == ListenMode.MANUAL:
                state = _close_mic(state, actions)
                if heard:
                    state = _start_turn(state, DIDNT_CATCH_THAT, True, actions)
            else:
                state = _open(state, state.mode, actions)
        case TurnFinished(turn_id=turn_id):
            if turn_id == state.turn_id:
                state = replace(state, turn_id=None)
    return state, actions
