"""The pure session core: every rule without an event loop (events in, actions out)."""

from __future__ import annotations

import struct

import pytest

from protocol.enums import ListenMode
from protocol.messages import (
    Abort,
    DeviceHello,
    DeviceMcp,
    ListenDetect,
    ListenStart,
    ListenStop,
    ServerHello,
    Stt,
    TtsStart,
    TtsStop,
)
from server.session import events as ev
from server.session.core import CoreSettings, Phase, SessionCore
from server.session.replies import Fixed, fixed_text


class Run:
    """Feeds a core and keeps every action; ``t`` is the fake clock (s)."""

    def __init__(self, **settings: object) -> None:
        self.core = SessionCore(CoreSettings(session_id="s1", **settings))  # type: ignore[arg-type]
        self.t = 0.0
        self.actions: list[ev.Action] = []
        self.feed(ev.SessionOpened(self.t))

    def feed(self, *events: ev.Event) -> list[ev.Action]:
        out: list[ev.Action] = []
        for event in events:
            out += self.core.handle(event)
        self.actions += out
        return out

    def msg(self, message: object, dt: float = 0.01) -> list[ev.Action]:
        self.t += dt
        return self.feed(ev.MessageReceived(message, self.t))

    def hello(self, **fields: object) -> list[ev.Action]:
        return self.msg(DeviceHello.model_validate({"type": "hello", **fields}))

    def utterance(self, text: str, **kw: object) -> list[ev.Action]:
        self.t += 0.5
        heard = bool(kw.pop("heard", True))
        return self.feed(ev.UtteranceEnded(self.core.epoch, text, heard, self.t, **kw))  # type: ignore[arg-type]

    def speak(self, turn_id: int, sentences: int, *, play: bool = True) -> None:
        for seq in range(sentences):
            self.t += 0.1
            self.feed(ev.SentenceReady(turn_id, seq, f"s{seq}", object(), self.t))
            if play:
                self.t += 1.0
                self.feed(ev.SentencePlayed(turn_id, seq, self.t))

    def sent(self, kind: type) -> list[object]:
        return [
            a.message
            for a in self.actions
            if isinstance(a, ev.Send) and isinstance(a.message, kind)
        ]

    def of(self, kind: type) -> list[object]:
        return [a for a in self.actions if isinstance(a, kind)]

    def stops(self) -> int:
        return len(self.sent(TtsStop))


def started(mode: ListenMode = ListenMode.AUTO, text: str = "what time is it") -> Run:
    run = Run()
    run.hello()
    run.msg(ListenStart(mode=mode))
    run.utterance(text)
    return run


# ----------------------------------------------------------------------------- hello


def test_hello_is_answered_once_with_websocket_transport_and_the_hello_timer_is_cancelled() -> None:
    run = Run()
    out = run.hello()
    hello = run.sent(ServerHello)
    assert len(hello) == 1 and hello[0].transport == "websocket" and hello[0].session_id == "s1"
    assert ev.CancelTimer("hello") in out and run.core.phase is Phase.OPEN


def test_no_hello_within_the_deadline_closes_the_socket() -> None:
    run = Run(hello_timeout_s=10.0)
    assert ev.SetTimer("hello", 10.0) in run.actions
    out = run.feed(ev.TimerFired("hello", 10.0))
    assert ev.Close(1000, "hello timeout") in out and run.core.phase is Phase.CLOSED


@pytest.mark.parametrize(
    ("fields", "header", "version"),
    [({"version": 3}, None, 3), ({}, 2, 2), ({}, None, 1), ({}, 7, 1)],
)
def test_binary_version_comes_from_hello_then_header_then_one(
    fields: dict[str, int], header: int | None, version: int
) -> None:
    core = SessionCore(CoreSettings(session_id="s"))
    core.handle(ev.SessionOpened(0.0, header))
    core.handle(ev.MessageReceived(DeviceHello.model_validate({"type": "hello", **fields}), 0.1))
    assert core.version == version


def test_messages_and_audio_before_hello_are_ignored() -> None:
    run = Run()
    out = run.msg(ListenStart(mode=ListenMode.AUTO))
    out += run.feed(ev.BinaryReceived(b"\x01\x02", 0.1))
    assert not run.of(ev.OpenUtterance) and ev.DropAudio("before-hello") in out


def test_mcp_discovery_starts_once_and_never_blocks_an_utterance() -> None:
    run = Run()
    run.hello(features={"mcp": True})
    run.hello(features={"mcp": True})
    assert len(run.of(ev.StartToolDiscovery)) == 1
    run.msg(ListenStart(mode=ListenMode.AUTO))
    out = run.utterance("turn on the lamp")  # no ToolsChanged ever came
    assert any(isinstance(a, ev.StartReply) for a in out)
    assert run.feed(ev.ToolsChanged(9.0)) == [ev.RefreshGrammar()]


def test_mcp_and_iot_messages_go_to_the_tools() -> None:
    run = Run()
    run.hello()
    message = DeviceMcp(payload={"jsonrpc": "2.0", "id": 1, "result": {}})
    assert run.msg(message) == [ev.FeedTools(message)]


# ----------------------------------------------------------------------------- audio


def test_audio_is_fed_only_while_listening_and_decoded_per_version() -> None:
    run = Run()
    run.hello(version=3)
    assert run.feed(ev.BinaryReceived(b"\x00\x00\x00\x02ab", 1.0)) == [
        ev.DropAudio("not-listening")
    ]
    run.msg(ListenStart(mode=ListenMode.AUTO))
    out = run.feed(ev.BinaryReceived(b"\x00\x00" + struct.pack(">H", 2) + b"ab", 1.1))
    assert out == [ev.FeedAudio(run.core.epoch, b"ab", 1.1)]
    bad = run.feed(ev.BinaryReceived(b"\x00\x00\x00\x09ab", 1.2))
    assert [type(a) for a in bad] == [ev.CountError, ev.DropAudio]


# ----------------------------------------------------------------------------- utterances


def test_text_sends_stt_closes_the_mic_and_starts_a_reply_in_auto_mode() -> None:
    run = started()
    assert run.sent(Stt)[0].text == "what time is it"
    assert run.of(ev.CloseMicrophone) and not run.core.listening
    (start,) = run.of(ev.StartReply)
    assert (start.turn_id, start.text, start.fixed, start.language) == (
        1,
        "what time is it",
        False,
        "en",
    )


def test_stale_utterance_of_an_older_epoch_is_ignored() -> None:
    run = Run()
    run.hello()
    run.msg(ListenStart(mode=ListenMode.AUTO))
    run.msg(ListenStart(mode=ListenMode.AUTO))
    run.feed(ev.UtteranceEnded(1, "tell me a story", True, 2.0))
    assert not run.of(ev.StartReply) and not run.sent(Stt)


def test_empty_transcript_in_auto_mode_keeps_listening_silently() -> None:
    run = started(text="")
    assert not run.of(ev.StartReply) and run.core.listening


def test_rejected_speech_gets_stt_and_didnt_catch_that_in_its_language_and_is_never_acted_on() -> (
    None
):
    run = Run()
    run.hello()
    run.msg(ListenStart(mode=ListenMode.AUTO))
    run.utterance("什么东西", rejected=True, language="zh")
    assert run.sent(Stt)[0].text == "什么东西"
    (start,) = run.of(ev.StartReply)
    assert start.fixed and start.text == fixed_text(Fixed.DIDNT_CATCH_THAT, "zh")


def test_noise_is_not_answered_even_in_manual_mode() -> None:
    run = Run()
    run.hello()
    run.msg(ListenStart(mode=ListenMode.MANUAL))
    run.msg(ListenStop())
    run.utterance("", heard=False)
    assert not run.of(ev.StartReply)


def test_manual_mode_apologises_for_heard_but_unrecognised_speech() -> None:
    run = Run()
    run.hello()
    run.msg(ListenStart(mode=ListenMode.MANUAL))
    assert run.msg(ListenStop()) == [ev.FinishUtterance(1)]
    run.utterance("")
    assert run.of(ev.StartReply)[0].text == fixed_text(Fixed.DIDNT_CATCH_THAT, "en")


def test_failed_recognition_of_heard_speech_is_spoken() -> None:
    run = started(text="")
    run2 = Run()
    run2.hello()
    run2.msg(ListenStart(mode=ListenMode.AUTO))
    run2.utterance("", asr_failed=True)
    assert not run.of(ev.StartReply)
    assert run2.of(ev.StartReply)[0].text == fixed_text(Fixed.CANNOT_LISTEN, "en")
    run3 = Run(language="zh-CN")
    run3.hello()
    run3.msg(ListenStart(mode=ListenMode.AUTO))
    run3.utterance("", asr_failed=True, asr_busy=True)  # Whisper too busy to start on it
    assert (
        run3.of(ev.StartReply)[0].text
        == fixed_text(Fixed.BUSY, "zh")
        == ("抱歉，我现在有点忙，请稍后再问我一次。")
    )


# ----------------------------------------------------------------------------- replies


def test_tts_start_precedes_the_first_sentence_and_stop_follows_the_last_played() -> None:
    run = started()
    run.speak(1, 2, play=False)
    assert run.stops() == 0
    kinds = [type(a) for a in run.actions if isinstance(a, ev.Send | ev.PlaySentence)]
    assert kinds.count(ev.PlaySentence) == 2 and len(run.sent(TtsStart)) == 1
    run.feed(ev.ReplyEnded(1, 2, 3.0))
    assert run.stops() == 0, "the board is still playing: no tts stop yet"
    run.feed(ev.SentencePlayed(1, 0, 4.0))
    assert run.stops() == 0
    run.feed(ev.SentencePlayed(1, 1, 5.0))
    assert run.stops() == 1 and run.core.turn is None
    assert ev.ReplyFinished(1, True) in run.actions


def test_reply_ended_after_everything_played_stops_at_once() -> None:
    run = started()
    run.speak(1, 1)
    run.feed(ev.ReplyEnded(1, 1, 9.0))
    assert run.stops() == 1


# Failure points: each must end a turn that spoke with exactly one tts stop, and a turn that
# did not speak with none (an apology turn follows, which has its own start and stop).


def test_dialogue_raising_before_any_sentence_sends_no_stop_and_apologises() -> None:
    run = started()
    run.feed(ev.ReplyFailed(1, "turn-failed", 1.0))
    assert run.stops() == 0 and ev.CancelReply(1) in run.actions
    apology = run.of(ev.StartReply)[-1]
    assert apology.turn_id == 2 and apology.fixed
    run.speak(2, 1)
    run.feed(ev.ReplyEnded(2, 1, 9.0))
    assert run.stops() == 1 and len(run.sent(TtsStart)) == 1


def test_tts_raising_on_the_first_sentence_sends_no_stop() -> None:
    run = started()
    run.feed(ev.ReplyFailed(1, "tts-engine-failed", 1.0))
    assert run.stops() == 0 and not run.sent(TtsStart)


def test_tts_raising_on_a_later_sentence_sends_exactly_one_stop() -> None:
    run = started()
    run.speak(1, 1, play=False)
    run.feed(ev.ReplyFailed(1, "turn-failed", 2.0))
    assert run.stops() == 1
    run.feed(ev.SentencePlayed(1, 0, 3.0), ev.ReplyEnded(1, 1, 3.1), ev.ReplyFailed(1, "x", 3.2))
    assert run.stops() == 1, "late events of the ended turn change nothing"
    assert len(run.of(ev.StartReply)) == 1, "it spoke: no apology turn"


def test_a_failing_apology_does_not_apologise_again() -> None:
    run = started()
    run.feed(ev.ReplyFailed(1, "x", 1.0))
    run.feed(ev.ReplyFailed(2, "x", 2.0))
    assert len(run.of(ev.StartReply)) == 2 and run.stops() == 0
    assert run.core.listening, "nothing could be said: the board still listens"


def test_a_tool_that_raises_is_an_ordinary_spoken_reply() -> None:
    run = started(text="turn on the lamp")
    run.speak(1, 1)  # "Sorry, the lamp could not be switched on."
    run.feed(ev.ReplyEnded(1, 1, 9.0))
    assert run.stops() == 1


@pytest.mark.parametrize("spoke", [False, True])
def test_a_hanging_tool_ends_the_turn_at_the_reply_deadline(spoke: bool) -> None:
    run = started(text="turn on the lamp")
    if spoke:
        run.speak(1, 1)
    timers = [a for a in run.actions if isinstance(a, ev.SetTimer) and a.name == "reply"]
    out = run.feed(ev.TimerFired("reply", timers[-1].at_s))
    assert ev.CancelReply(1) in out
    assert run.stops() == (1 if spoke else 0)
    assert len(run.of(ev.StartReply)) == (1 if spoke else 2)


@pytest.mark.parametrize("spoke", [False, True])
def test_socket_closing_mid_reply(spoke: bool) -> None:
    run = started()
    if spoke:
        run.speak(1, 1, play=False)
    run.feed(ev.ChannelLost(5.0))
    assert run.stops() == (1 if spoke else 0)
    assert ev.CancelReply(1) in run.actions and run.core.phase is Phase.CLOSED
    assert run.feed(ev.SentencePlayed(1, 0, 6.0)) == []


def test_sentences_of_a_cancelled_turn_are_never_played() -> None:
    run = started()
    run.msg(Abort())
    out = run.feed(ev.SentenceReady(1, 0, "late", object(), 2.0))
    assert out == [] and not run.sent(TtsStart)


# ----------------------------------------------------------------------------- interruptions


def test_abort_while_speaking_stops_at_once_and_only_once() -> None:
    run = started()
    run.speak(1, 1, play=False)
    out = run.msg(Abort())
    assert ev.Send(TtsStop()) in out and ev.CancelReply(1) in out
    run.msg(Abort())
    assert run.stops() == 1 and run.core.turn is None


def test_wake_word_and_listen_start_during_a_turn_cancel_it() -> None:
    run = started()
    run.speak(1, 1, play=False)
    run.msg(ListenDetect(text="hey"))
    out = run.msg(ListenStart(mode=ListenMode.AUTO))
    assert run.stops() == 1 and ev.CloseMicrophone() in run.actions
    assert out[-1] == ev.OpenUtterance(run.core.epoch, ListenMode.AUTO)


def test_realtime_drops_echo_and_lets_sustained_speech_barge_in() -> None:
    run = started(mode=ListenMode.REALTIME, text="tell me a story")
    assert run.core.listening
    run.speak(1, 1, play=False)
    t0 = run.t
    epoch = run.core.epoch
    run.feed(ev.UtteranceEnded(epoch, "what time is it", True, t0 + 0.1))  # our own voice
    assert run.core.turn is not None and len(run.of(ev.StartReply)) == 1
    epoch = run.core.epoch
    run.feed(ev.SpeechProgressed(epoch, 500.0, t0 + 0.1))  # inside the echo guard
    assert run.core.turn is not None
    run.feed(ev.SpeechProgressed(epoch, 300.0, t0 + 1.0))  # too short
    assert run.core.turn is not None
    run.feed(ev.SpeechProgressed(epoch, 500.0, t0 + 1.0))
    assert run.core.turn is None and run.stops() == 1
    run.feed(ev.UtteranceEnded(epoch, "what time is it", True, t0 + 2.0))
    assert run.of(ev.StartReply)[-1].text == "what time is it"


def test_barge_in_speech_is_ignored_outside_realtime() -> None:
    run = started()
    run.speak(1, 1, play=False)
    assert run.feed(ev.SpeechProgressed(run.core.epoch, 2000.0, 9.0)) == []


# ----------------------------------------------------------------------------- idle


def test_idle_timer_closes_only_after_silence_both_ways() -> None:
    run = Run(idle_timeout_s=120.0)
    run.hello()
    run.t = 100.0
    run.msg(ListenStart(mode=ListenMode.AUTO), dt=0.0)
    out = run.feed(ev.TimerFired("idle", 120.01))
    assert ev.SetTimer("idle", 220.0) in out
    out = run.feed(ev.TimerFired("idle", 220.0))
    assert ev.Close(1000, "idle timeout") in out


# ----------------------------------------------------------------------------- MQTT + UDP

UDP = {"server": "127.0.0.1", "port": 8884, "key": "00" * 16, "nonce": "01" + "00" * 15}


def test_udp_session_hello_carries_transport_udp_and_the_udp_section() -> None:
    from protocol.messages import UdpParams

    run = Run(transport="udp", udp=UdpParams(**UDP))  # type: ignore[arg-type]
    run.hello(version=3, transport="udp")
    (hello,) = run.sent(ServerHello)
    assert isinstance(hello, ServerHello)
    assert hello.transport == "udp" and hello.udp is not None
    assert hello.udp.model_dump() == UDP and hello.session_id == "s1"


def test_udp_session_audio_is_raw_opus_whatever_the_hello_version_says() -> None:
    from protocol.messages import UdpParams

    run = Run(transport="udp", udp=UdpParams(**UDP))  # type: ignore[arg-type]
    run.hello(version=3, transport="udp")
    run.msg(ListenStart(mode=ListenMode.AUTO))
    packet = b"\x58\x01\x02"  # would be a bad v3 header (payload_size 0x0102)
    out = run.feed(ev.BinaryReceived(packet, run.t))
    assert [a.payload for a in out if isinstance(a, ev.FeedAudio)] == [packet]
    run.utterance("turn on the lamp")
    assert run.of(ev.StartReply)[0].version == 1  # type: ignore[attr-defined]


def test_device_goodbye_ends_an_udp_session_and_cancels_the_turn_without_answering() -> None:
    from protocol.messages import DeviceGoodbye, ServerGoodbye, UdpParams

    run = Run(transport="udp", udp=UdpParams(**UDP))  # type: ignore[arg-type]
    run.hello(version=3, transport="udp")
    run.msg(ListenStart(mode=ListenMode.AUTO))
    run.utterance("what time is it")
    run.speak(1, 1, play=False)
    out = run.msg(DeviceGoodbye(session_id="s1"))
    assert run.core.phase is Phase.CLOSED
    assert [a for a in out if isinstance(a, ev.Close)] == [ev.Close(1000, "device goodbye")]
    assert any(isinstance(a, ev.CancelReply) for a in out)
    assert run.stops() == 1 and not run.sent(ServerGoodbye)


def test_goodbye_over_websocket_is_ignored() -> None:
    from protocol.messages import DeviceGoodbye

    run = Run()
    run.hello()
    assert not any(isinstance(a, ev.Close) for a in run.msg(DeviceGoodbye()))
    assert run.core.phase is Phase.OPEN


# ----------------------------------------------------------------------------- shutdown


def test_shutdown_closes_an_idle_session_at_once_with_going_away() -> None:
    run = Run()
    run.hello()
    run.msg(ListenStart(mode=ListenMode.AUTO))
    out = run.feed(ev.ShutdownRequested(3.0, 5.0))
    assert ev.CloseMicrophone() in out and out[-1] == ev.Close(1001, "server shutting down")
    assert run.core.phase is Phase.CLOSED


def test_shutdown_lets_the_reply_finish_then_closes() -> None:
    run = started()
    run.speak(1, 1, play=False)
    out = run.feed(ev.ShutdownRequested(3.0, 5.0))
    assert ev.SetTimer("shutdown", 8.0) in out and run.core.phase is Phase.OPEN
    assert run.msg(ListenStart(mode=ListenMode.AUTO))[0].level == 20  # ignored, logged
    run.feed(ev.ReplyEnded(1, 1, 6.0), ev.SentencePlayed(1, 0, 6.5))
    assert run.stops() == 1 and run.actions[-1] == ev.Close(1001, "server shutting down")


def test_shutdown_ends_a_reply_that_outlasts_the_grace_with_tts_stop() -> None:
    run = started()
    run.speak(1, 1, play=False)
    run.feed(ev.ShutdownRequested(3.0, 5.0))
    out = run.feed(ev.TimerFired("shutdown", 8.0))
    assert out[-1] == ev.Close(1001, "server shutting down") and run.stops() == 1
    assert not run.of(ev.StartReply)[1:], "no apology while shutting down"


def test_a_reply_in_progress_is_not_idle() -> None:
    from server.session.core import IDLE_TIMER

    run = started()
    run.speak(1, 1, play=False)  # speaking one long sentence, the board silent
    run.t += 200.0
    out = run.feed(ev.TimerFired(IDLE_TIMER, run.t))
    assert not any(isinstance(a, ev.Close) for a in out) and run.core.phase is Phase.OPEN
    run.feed(ev.SentencePlayed(1, 0, run.t), ev.ReplyEnded(1, 1, run.t))
    run.t += 121.0
    out = run.feed(ev.TimerFired(IDLE_TIMER, run.t))
    assert ev.Close(1000, "idle timeout") in out


# ----------------------------------------------------------------------------- speculation


def listening(mode: ListenMode = ListenMode.AUTO, **settings: object) -> Run:
    run = Run(**settings)
    run.hello()
    run.msg(ListenStart(mode=mode))
    return run


def stable(run: Run, text: str) -> list[ev.Action]:
    run.t += 0.1
    return run.feed(ev.PartialStable(run.core.epoch, text, run.t))


def test_a_stable_command_partial_starts_a_speculation_that_the_same_words_adopt() -> None:
    run = listening()
    assert stable(run, "turn on the lamp") == [ev.Speculate("turn on the lamp", "en", 1)]
    assert stable(run, "turn on the lamp") == []  # once per words
    out = run.utterance("turn on the lamp", language="en")
    (start,) = [a for a in out if isinstance(a, ev.StartReply)]
    assert start.speculative and start.text == "turn on the lamp"
    assert not run.of(ev.DiscardSpeculation) and run.core.speculation is None


@pytest.mark.parametrize(
    ("final", "kw"),
    [("turn off the lamp", {}), ("", {}), ("turn on the lamp", {"rejected": True}),
     ("turn on the lamp", {"language": "zh"})],
)  # fmt: skip
def test_other_words_noise_or_rejection_discard_the_speculation(
    final: str, kw: dict[str, object]
) -> None:
    run = listening()
    stable(run, "turn on the lamp")
    out = run.utterance(final, **kw)
    assert ev.DiscardSpeculation() in out and run.core.speculation is None
    starts = [a for a in out if isinstance(a, ev.StartReply)]
    assert all(not s.speculative for s in starts)
    if starts:  # the discard comes before the real turn starts
        assert out.index(ev.DiscardSpeculation()) < out.index(starts[0])


def test_a_new_partial_replaces_the_speculation() -> None:
    run = listening()
    stable(run, "turn on the lamp")
    out = stable(run, "turn on the fan")
    assert out == [ev.DiscardSpeculation(), ev.Speculate("turn on the fan", "en", 1)]


@pytest.mark.parametrize("how", ["abort", "listen start", "channel lost", "stale"])
def test_a_speculation_never_outlives_its_utterance(how: str) -> None:
    run = listening()
    stable(run, "what time is it")
    if how == "abort":
        out = run.msg(Abort())
    elif how == "listen start":
        out = run.msg(ListenStart(mode=ListenMode.AUTO))
    elif how == "channel lost":
        out = run.feed(ev.ChannelLost(run.t))
    else:  # the user spoke again and that utterance ended first
        run.msg(ListenStart(mode=ListenMode.AUTO))
        out = run.utterance("turn on the lamp")
    assert run.core.speculation is None
    assert ev.DiscardSpeculation() in run.actions
    assert not any(isinstance(a, ev.StartReply) and a.speculative for a in run.actions), out


def test_no_speculation_while_a_turn_runs_when_off_or_for_an_old_epoch() -> None:
    run = started(ListenMode.REALTIME)
    assert stable(run, "turn on the lamp") == []  # the server is answering
    off = listening(speculate=False)
    assert stable(off, "turn on the lamp") == []
    old = listening()
    old.t += 0.1
    assert old.feed(ev.PartialStable(old.core.epoch - 1, "turn on the lamp", old.t)) == []


# ----------------------------------------------------------------------------- "one moment"


def slow(run: Run) -> list[ev.Action]:
    run.t += 2.0
    return run.feed(ev.RecognitionSlow(run.core.epoch, run.t))


def test_a_late_transcript_gets_one_moment_then_the_answer_in_the_same_turn() -> None:
    run = listening()
    epoch = run.core.epoch
    out = slow(run)
    (start,) = [a for a in out if isinstance(a, ev.StartReply)]
    assert start.text == "One moment." and start.fixed
    run.speak(start.turn_id, 1)  # said and played: the turn stays open, no tts stop
    run.feed(ev.ReplyEnded(start.turn_id, 1, run.t))
    assert run.stops() == 0 and run.core.turn is not None
    run.t += 1.0
    out = run.feed(ev.UtteranceEnded(epoch, "what is the weather like", True, run.t, language="en"))
    assert run.sent(Stt) == [Stt(text="what is the weather like")]
    (go_on,) = [a for a in out if isinstance(a, ev.ContinueReply)]
    assert (go_on.turn_id, go_on.text, go_on.fixed, go_on.first_seq) == (
        start.turn_id, "what is the weather like", False, 1
    )  # fmt: skip
    run.t += 0.1
    run.feed(ev.SentenceReady(start.turn_id, 1, "It is sunny.", object(), run.t))
    run.feed(ev.ReplyEnded(start.turn_id, 1, run.t))
    assert run.stops() == 0  # not played yet
    run.t += 1.0
    run.feed(ev.SentencePlayed(start.turn_id, 1, run.t))
    assert run.stops() == 1 and len(run.sent(TtsStart)) == 1 and run.core.turn is None


def test_one_moment_is_said_in_the_language_of_the_last_transcript() -> None:
    run = listening()
    run.utterance("现在几点了", language="zh")
    run.speak(1, 1)
    run.feed(ev.ReplyEnded(1, 1, run.t))
    run.msg(ListenStart(mode=ListenMode.AUTO))
    (start,) = [a for a in slow(run) if isinstance(a, ev.StartReply)]
    assert start.text == "请稍等。"


@pytest.mark.parametrize(
    ("kw", "said"),
    [({"text": "", "asr_failed": True, "asr_busy": True}, fixed_text(Fixed.BUSY, "en")),
     ({"text": "mumble", "rejected": True}, fixed_text(Fixed.DIDNT_CATCH_THAT, "en"))],
)  # fmt: skip
def test_a_late_failure_or_rejection_is_spoken_in_the_held_turn(
    kw: dict[str, object], said: str
) -> None:
    run = listening()
    epoch = run.core.epoch
    slow(run)
    text = str(kw.pop("text"))
    out = run.feed(ev.UtteranceEnded(epoch, text, True, run.t + 1, **kw))  # type: ignore[arg-type]
    (go_on,) = [a for a in out if isinstance(a, ev.ContinueReply)]
    assert go_on.text == said and go_on.fixed


def test_noise_after_one_moment_ends_the_turn_once_played() -> None:
    run = listening()
    epoch = run.core.epoch
    (start,) = [a for a in slow(run) if isinstance(a, ev.StartReply)]
    run.speak(start.turn_id, 1)
    run.feed(ev.ReplyEnded(start.turn_id, 1, run.t))
    run.feed(ev.UtteranceEnded(epoch, "", False, run.t + 1))
    assert run.stops() == 1 and run.core.turn is None and not run.of(ev.ContinueReply)


def test_an_interrupted_one_moment_drops_the_late_answer() -> None:
    run = listening()
    epoch = run.core.epoch
    (start,) = [a for a in slow(run) if isinstance(a, ev.StartReply)]
    run.speak(start.turn_id, 1)
    run.msg(Abort())
    assert run.stops() == 1
    out = run.feed(ev.UtteranceEnded(epoch, "what is the weather like", True, run.t + 1))
    assert not run.sent(Stt) and not [a for a in out if isinstance(a, ev.StartReply)]


def test_no_one_moment_for_an_old_utterance_or_while_answering() -> None:
    run = started()
    assert slow(run) == []  # a turn is running
    old = listening()
    old.t += 2
    assert old.feed(ev.RecognitionSlow(old.core.epoch - 1, old.t)) == []
