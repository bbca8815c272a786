"""The simulated user as a specification: what it does next for each thing the board reports.
Pure: no event loop, no sockets; timers are actions and their expiry is an input."""

from __future__ import annotations

from device.conversation import (
    Board,
    CancelTimer,
    Conversation,
    ConversationAction,
    Finish,
    HangUp,
    Observed,
    SetTimer,
    Speak,
    Started,
    TimerFired,
    Trigger,
)
from device.errors import ChannelError, ChannelLost, ReplyTimeout, ScenarioError
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

IDLE = Board(DeviceState.IDLE, mic_open=False)
LISTENING = Board(DeviceState.LISTENING, mic_open=True)
SPEAKING = Board(DeviceState.SPEAKING, mic_open=False)


def ended(turn: int, stt: str | None = None) -> TurnEnded:
    return TurnEnded(turn, 500.0, 700.0, None, 0, stt)


class User:
    def __init__(self, plan: list[str], **kw: object) -> None:
        self.c = Conversation(plan, **kw)  # type: ignore[arg-type]
        self.now = 0.0

    def start(self, board: Board = IDLE) -> list[ConversationAction]:
        return self.c.handle(Started(now_s=self.now, board=board))

    def see(self, event: DeviceEvent, board: Board = LISTENING) -> list[ConversationAction]:
        return self.c.handle(Observed(now_s=self.now, board=board, event=event))

    def fire(
        self, name: str, board: Board = LISTENING, quiet_s: float = 0.0
    ) -> list[ConversationAction]:
        return self.c.handle(
            TimerFired(now_s=self.now, board=board, name=name, server_quiet_s=quiet_s)
        )

    def reply(self, turn: int, text: str = "It is noon.") -> list[ConversationAction]:
        out = self.see(SpeechEnded())
        out += self.see(TtsStateChanged("start"), SPEAKING)
        out += self.see(SentenceStarted(text), SPEAKING)
        return out + self.see(ended(turn), LISTENING)


def finish(actions: list[ConversationAction]) -> Finish:
    [done] = [a for a in actions if isinstance(a, Finish)]
    return done


def test_click_then_speak_when_the_mic_opens_and_finish_after_the_reply() -> None:
    user = User(["what time is it"])
    assert Trigger("click") in user.start()
    assert Speak(0) in user.see(ListenStarted("auto"))
    user.see(SttReceived("what time is it"))
    actions = user.reply(turn=0)
    assert HangUp() in actions
    done = finish(actions)
    assert done.error is None
    assert done.replies[0]["stt"] == "what time is it"
    assert done.replies[0]["sentences"] == ["It is noon."]


def test_after_a_wake_word_a_greeting_is_waited_out_and_its_stop_is_not_the_reply() -> None:
    user = User(["what time is it"], mode="wake", greeting_grace_s=1.5)
    assert Trigger("wake") in user.start()
    actions = user.see(ListenStarted("auto"))
    assert SetTimer("grace", 1.5) in actions and not any(isinstance(a, Speak) for a in actions)
    user.see(SttReceived("hey computer"))  # the wake word echoed: not our transcript
    assert CancelTimer("grace") in user.see(TtsStateChanged("start"), SPEAKING)
    actions = user.see(ended(0, "hey computer"), LISTENING)
    assert not any(isinstance(a, Speak | Finish) for a in actions)  # the greeting is no reply
    assert user.fire("grace") == []  # stale timer: nothing
    assert Speak(0) in user.see(ListenStarted("auto"))  # mic reopened after the greeting played
    user.see(SttReceived("what time is it"))
    done = finish(user.reply(turn=1))
    assert done.error is None and done.replies[0]["stt"] == "what time is it"


def test_after_a_wake_word_without_greeting_it_speaks_after_the_grace_period() -> None:
    user = User(["hello"], mode="wake")
    user.start()
    user.see(ListenStarted("auto"))
    assert Speak(0) in user.fire("grace")


def test_a_long_reply_that_keeps_streaming_never_times_out() -> None:
    user = User(["what is the device status"], reply_idle_timeout_s=30.0)
    user.start()
    assert SetTimer("reply_idle", 30.0) in user.see(ListenStarted("auto"))
    user.see(SpeechEnded())
    user.see(TtsStateChanged("start"), SPEAKING)
    for _ in range(3):  # 90 s of reply audio, the last frame 2 s ago each time
        user.now += 30.0
        assert user.fire("reply_idle", SPEAKING, quiet_s=2.0) == [SetTimer("reply_idle", 28.0)]
    assert finish(user.see(ended(0), LISTENING)).error is None


def test_a_server_that_speaks_over_the_request_is_heard_out_then_asked_again_once() -> None:
    user = User(["what time is it"])  # e.g. a server that greets on listen start
    user.start()
    assert Speak(0) in user.see(ListenStarted("auto"))
    assert user.see(TtsStateChanged("start"), SPEAKING) == []  # mic closed mid-request
    assert not any(isinstance(a, Finish) for a in user.see(ended(0, None), LISTENING))
    assert Speak(0, again=True) in user.see(ListenStarted("auto"))
    # the second time the server answers early again: that is its answer
    user.see(TtsStateChanged("start"), SPEAKING)
    assert finish(user.see(ended(1, "what time is it"), LISTENING)).error is None


def test_a_realtime_board_keeps_speaking_so_an_early_tts_start_is_the_reply() -> None:
    user = User(["hello"])
    user.start()
    user.see(ListenStarted("realtime"))
    realtime_speaking = Board(DeviceState.SPEAKING, mic_open=True)
    user.see(TtsStateChanged("start"), realtime_speaking)
    assert finish(user.see(ended(0), LISTENING)).error is None


def test_silence_while_a_reply_is_due_is_a_coded_timeout() -> None:
    user = User(["hello"], reply_idle_timeout_s=30.0)
    user.start()
    user.see(ListenStarted("auto"))
    user.now += 30.0
    done = finish(user.fire("reply_idle", quiet_s=45.0))
    assert isinstance(done.error, ReplyTimeout) and done.error.code == "reply-timeout"
    assert "the reply to 'hello'" in str(done.error)


def test_the_channel_closing_mid_reply_fails_at_once() -> None:
    user = User(["hello"])
    user.start()
    user.see(ListenStarted("auto"))
    user.see(TtsStateChanged("start"), SPEAKING)
    done = finish(user.see(ChannelClosed("server sent Close (code 1000)"), IDLE))
    assert isinstance(done.error, ChannelLost) and "code 1000" in str(done.error)


def test_a_reboot_request_mid_turn_fails_at_once() -> None:
    user = User(["hello"])
    user.start()
    user.see(ListenStarted("auto"))
    assert isinstance(finish(user.see(RebootRequested(), IDLE)).error, ChannelLost)


def test_a_channel_that_cannot_open_fails_at_once_with_its_reason() -> None:
    user = User(["hello"])
    user.start()
    done = finish(user.see(ChannelOpenFailed("error", "HTTP/1.1 404 Not Found", "sad"), IDLE))
    assert isinstance(done.error, ChannelError) and "404" in str(done.error)


def test_a_server_that_closes_idle_sessions_between_turns_gets_a_new_conversation() -> None:
    user = User(["one", "two"], think_s=1.0)
    user.start()
    user.see(ListenStarted("auto"))
    assert SetTimer("think", 1.0) in user.reply(turn=0)
    assert user.see(ChannelClosed("idle"), IDLE) == []
    assert Trigger("click") in user.fire("think", IDLE)
    assert Speak(1) in user.see(ListenStarted("auto"))


def test_next_turn_speaks_at_once_when_the_mic_is_already_open() -> None:
    user = User(["one", "two"])
    user.start()
    user.see(ListenStarted("auto"))
    user.reply(turn=0)
    assert Speak(1) in user.fire("think", LISTENING)


def test_push_to_talk_releases_when_the_speech_ended() -> None:
    user = User(["hello"], mode="ptt")
    assert Trigger("press") in user.start()
    assert Speak(0) in user.see(ListenStarted("manual"))
    assert Trigger("release") in user.see(SpeechEnded())
    idle = Board(DeviceState.IDLE, mic_open=False)
    user.see(TtsStateChanged("start"), SPEAKING)
    assert finish(user.see(ended(0), idle)).error is None


def test_barge_in_clicks_after_the_reply_audio_started() -> None:
    user = User(["tell me a story"], abort_after_s=0.3)
    user.start()
    user.see(ListenStarted("auto"))
    user.see(SpeechEnded())
    user.see(TtsStateChanged("start"), SPEAKING)
    assert SetTimer("barge", 0.3) in user.see(ReplyAudioStarted(0), SPEAKING)
    assert user.fire("barge", SPEAKING) == [Trigger("click")]


def test_the_mic_that_never_opens_is_a_timeout() -> None:
    user = User(["hello"], mic_timeout_s=30.0)
    user.start()
    done = finish(user.fire("mic", IDLE))
    assert type(done.error) is ScenarioError and "mic to open" in str(done.error)
