"""The pure session state machine: every rule without an event loop."""

from __future__ import annotations

import pytest

from protocol.enums import ListenMode
from server.session import state as st


def run(events: list[st.Event], state: st.SessionState | None = None):
    state = state or st.SessionState()
    actions: list[st.Action] = []
    for event in events:
        state, out = st.transition(state, event)
        actions += out
    return state, actions


def test_listen_start_opens_a_new_utterance_each_time() -> None:
    state, actions = run([st.ListenStarted(ListenMode.AUTO), st.ListenStarted(ListenMode.AUTO)])
    assert actions == [st.OpenUtterance(1, ListenMode.AUTO), st.OpenUtterance(2, ListenMode.AUTO)]
    assert state.listening and state.epoch == 2


def test_auto_utterance_with_text_sends_stt_and_starts_a_turn_with_mic_closed() -> None:
    state, actions = run(
        [st.ListenStarted(ListenMode.AUTO), st.UtteranceEnded(1, " what time is it ", True)]
    )
    assert actions[1:] == [
        st.SendStt("what time is it"),
        st.CloseMicrophone(),
        st.StartTurn(1, "what time is it"),
    ]
    assert not state.listening and state.turn_id == 1


def test_stale_utterance_of_an_older_epoch_is_ignored() -> None:
    _state, actions = run(
        [
            st.ListenStarted(ListenMode.AUTO),
            st.ListenStarted(ListenMode.AUTO),
            st.UtteranceEnded(1, "tell me a story", True),
        ]
    )
    assert not any(isinstance(a, st.SendStt | st.StartTurn) for a in actions)


def test_empty_transcript_in_auto_mode_keeps_listening_silently() -> None:
    state, actions = run([st.ListenStarted(ListenMode.AUTO), st.UtteranceEnded(1, "", True)])
    assert actions[-1] == st.OpenUtterance(2, ListenMode.AUTO)
    assert state.listening and state.turn_id is None


def test_manual_mode_waits_for_stop_and_apologises_for_unrecognised_speech() -> None:
    state, actions = run([st.ListenStarted(ListenMode.MANUAL), st.ListenStopped()])
    assert actions[-1] == st.FinishUtterance(1)
    state, actions = run([st.UtteranceEnded(1, "", True)], state)
    assert actions[-1] == st.StartTurn(1, st.DIDNT_CATCH_THAT, fixed=True)


@pytest.mark.parametrize("mode", [ListenMode.AUTO, ListenMode.MANUAL])
def test_failed_recognition_of_heard_speech_is_spoken(mode: ListenMode) -> None:
    state, actions = run([st.ListenStarted(mode), st.UtteranceEnded(1, "", True, asr_failed=True)])
    assert actions[-1] == st.StartTurn(1, st.CANNOT_LISTEN, fixed=True)
    assert not state.listening


def test_manual_mode_with_no_speech_at_all_stays_silent() -> None:
    _state, actions = run(
        [st.ListenStarted(ListenMode.MANUAL), st.ListenStopped(), st.UtteranceEnded(1, "", False)]
    )
    assert not any(isinstance(a, st.StartTurn | st.SendStt) for a in actions)


def test_abort_cancels_the_running_turn_only_once() -> None:
    state, _ = run([st.ListenStarted(ListenMode.AUTO), st.UtteranceEnded(1, "hi", True)])
    state, actions = run([st.Aborted(), st.Aborted()], state)
    assert actions == [st.CancelTurn(1)]
    assert state.turn_id is None


def test_new_listen_start_during_a_turn_is_a_barge_in() -> None:
    state, _ = run([st.ListenStarted(ListenMode.AUTO), st.UtteranceEnded(1, "hi", True)])
    state, actions = run([st.ListenDetected("hey"), st.ListenStarted(ListenMode.AUTO)], state)
    assert actions[0] == st.CancelTurn(1)
    assert st.CloseMicrophone() in actions and actions[-1] == st.OpenUtterance(4, ListenMode.AUTO)


def test_realtime_keeps_listening_while_speaking_and_drops_echo_utterances() -> None:
    state, actions = run(
        [st.ListenStarted(ListenMode.REALTIME), st.UtteranceEnded(1, "tell me a story", True)]
    )
    assert state.listening and state.turn_id == 1
    # an utterance that never passed the echo gate while we speak: our own voice
    state, actions = run([st.UtteranceEnded(2, "what time is it", True)], state)
    assert actions == [st.OpenUtterance(3, ListenMode.REALTIME)] and state.turn_id == 1
    # sustained speech passes the gate: the turn is cancelled and the utterance goes through
    state, actions = run(
        [st.BargeInSpeech(3), st.UtteranceEnded(3, "what time is it", True)], state
    )
    assert actions[0] == st.CancelTurn(1)
    assert st.SendStt("what time is it") in actions and state.turn_id == 2


def test_barge_in_speech_is_ignored_outside_realtime() -> None:
    state, _ = run([st.ListenStarted(ListenMode.AUTO), st.UtteranceEnded(1, "hi", True)])
    state, actions = run([st.BargeInSpeech(state.epoch)], state)
    assert actions == [] and state.turn_id == 1


def test_turn_finished_clears_only_the_current_turn() -> None:
    state, _ = run([st.ListenStarted(ListenMode.AUTO), st.UtteranceEnded(1, "hi", True)])
    state, _ = run([st.TurnFinished(7)], state)
    assert state.turn_id == 1
    state, _ = run([st.TurnFinished(1)], state)
    assert state.turn_id is None
