"""The board core as a specification (protocol.md §5): inputs in, exact wire strings and actions
out. No event loop, no sockets, no sleeps: time is the ``now_s`` of each input."""

from __future__ import annotations

from device.core import (
    AbortRequested,
    Action,
    Activated,
    AnswerMcp,
    ApplyIotCommands,
    AudioReceived,
    BoardCore,
    ButtonClicked,
    ChannelDropped,
    ChannelFailed,
    ChannelReady,
    CloseChannel,
    CloseMic,
    ConfigureDecoder,
    Emit,
    HungUp,
    Input,
    McpAnswered,
    MessageReceived,
    OpenChannel,
    OpenMic,
    PlayAudio,
    PlaybackDrained,
    PoweredOn,
    ResetDecoder,
    Send,
    SendAudio,
    SendIotDescriptors,
    SendIotStates,
    SpeechSent,
    TalkPressed,
    TalkReleased,
    WakeWordHeard,
    WatchPlayback,
)
from device.events import (
    AbortSent,
    AlertShown,
    ChannelClosed,
    ChannelOpenFailed,
    DeviceEvent,
    EmotionChanged,
    ListenStarted,
    RebootRequested,
    ReplyAudioStarted,
    SentenceStarted,
    StateChanged,
    SttReceived,
    TurnEnded,
)
from protocol.enums import AbortReason, DeviceState
from protocol.messages import (
    WireModel,
    decode_device_message,
    decode_server_message,
    encode_message,
)

S = DeviceState
START_AUTO = '{"session_id":"S1","type":"listen","state":"start","mode":"auto"}'
START_MANUAL = '{"session_id":"S1","type":"listen","state":"start","mode":"manual"}'
START_REALTIME = '{"session_id":"S1","type":"listen","state":"start","mode":"realtime"}'
STOP = '{"session_id":"S1","type":"listen","state":"stop"}'
ABORT = '{"session_id":"S1","type":"abort"}'
ABORT_WAKE = '{"session_id":"S1","type":"abort","reason":"wake_word_detected"}'
DETECT = '{"session_id":"S1","type":"listen","state":"detect","text":"hey computer"}'
TTS_START = '{"type":"tts","state":"start"}'
TTS_STOP = '{"type":"tts","state":"stop"}'


class Board:
    """A core plus a clock: ``board(Input, ...)`` applies inputs at the current time."""

    def __init__(self, **kw: object) -> None:
        self.core = BoardCore(**kw)  # type: ignore[arg-type]
        self.now = 100.0
        self.actions: list[Action] = []
        self(PoweredOn, Activated)

    def __call__(self, *inputs: type[Input] | Input, **fields: object) -> list[Action]:
        out: list[Action] = []
        for item in inputs:
            event = item if isinstance(item, Input) else item(now_s=self.now, **fields)  # type: ignore[arg-type]
            out += self.core.handle(event)
        self.actions = out
        return out

    def server(self, text: str) -> list[Action]:
        return self(MessageReceived(now_s=self.now, message=decode_server_message(text)))

    def ready(self) -> list[Action]:
        return self(ChannelReady(now_s=self.now, session_id="S1"))

    @property
    def state(self) -> DeviceState:
        return self.core.state


def device_message(text: str) -> WireModel:
    message: WireModel = decode_device_message(text)
    return message


def sent(actions: list[Action]) -> list[str]:
    return [encode_message(a.message) for a in actions if isinstance(a, Send)]


def events(actions: list[Action]) -> list[DeviceEvent]:
    return [a.event for a in actions if isinstance(a, Emit)]


def states(actions: list[Action]) -> list[tuple[str, str]]:
    return [(e.old, e.new) for e in events(actions) if isinstance(e, StateChanged)]


def listening(**kw: object) -> Board:
    board = Board(**kw)
    board(ButtonClicked)
    board.ready()
    return board


def speaking(**kw: object) -> Board:
    board = listening(**kw)
    board.server(TTS_START)
    return board


def test_boot_goes_starting_activating_idle_without_a_socket() -> None:
    board = Board()
    assert board.state == S.IDLE and board.core.channel == "closed"


def test_click_when_idle_connects_then_listens_auto() -> None:
    board = Board()
    actions = board(ButtonClicked)
    assert states(actions) == [("idle", "connecting")]
    assert OpenChannel() in actions and sent(actions) == []
    actions = board.ready()
    assert sent(actions) == [START_AUTO]
    assert actions.index(Send(device_message(START_AUTO))) < actions.index(OpenMic())
    assert ConfigureDecoder(24000, 60) in actions
    assert states(actions) == [("connecting", "listening")]
    assert ListenStarted("auto") in events(actions)


def test_click_while_listening_hangs_up_without_listen_stop() -> None:
    board = listening()
    actions = board(ButtonClicked)
    assert sent(actions) == [] and CloseChannel() in actions and CloseMic() in actions
    assert board.state == S.IDLE and board.core.channel == "closed"


def test_click_while_speaking_aborts_and_changes_nothing_locally() -> None:
    board = speaking()
    actions = board(ButtonClicked)
    assert sent(actions) == [ABORT] and states(actions) == []
    assert AbortSent(None) in events(actions)
    assert board.state == S.SPEAKING


def test_entering_speaking_closes_mic_and_resets_decoder() -> None:
    board = listening()
    actions = board.server(TTS_START)
    assert CloseMic() in actions and ResetDecoder() in actions
    assert board.state == S.SPEAKING and not board.core.mic_on


def test_auto_tts_stop_listens_again_only_after_playback_drained() -> None:
    board = speaking()
    actions = board.server(TTS_STOP)
    assert board.state == S.LISTENING
    assert WatchPlayback() in actions and sent(actions) == []
    assert any(isinstance(e, TurnEnded) for e in events(actions))
    actions = board(PlaybackDrained)
    assert sent(actions) == [START_AUTO] and OpenMic() in actions
    assert sent(board(PlaybackDrained)) == []  # only once


def test_aec_realtime_keeps_mic_while_speaking_and_sends_nothing_at_stop() -> None:
    board = Board(aec=True)
    board(ButtonClicked)
    assert sent(board.ready()) == [START_REALTIME]
    actions = board.server(TTS_START)
    assert CloseMic() not in actions and board.core.mic_on
    actions = board.server(TTS_STOP)
    assert sent(actions) == [] and WatchPlayback() not in actions
    assert board.state == S.LISTENING


def test_push_to_talk_keeps_the_channel_and_manual_stop_goes_idle() -> None:
    board = Board()
    board(TalkPressed)
    assert sent(board.ready()) == [START_MANUAL]
    actions = board(TalkReleased)
    assert sent(actions) == [STOP] and CloseChannel() not in actions
    assert board.state == S.IDLE and board.core.channel == "open"
    board.server(TTS_START)  # a server may speak to an idle board with an open channel
    assert board.state == S.SPEAKING
    board.server(TTS_STOP)
    assert board.state == S.IDLE
    actions = board(TalkPressed)  # same socket: no new hello
    assert OpenChannel() not in actions and sent(actions) == [START_MANUAL]
    board.server(TTS_START)
    assert sent(board(TalkPressed)) == [ABORT, START_MANUAL]


def test_wake_word_when_idle_sends_preroll_burst_detect_then_listen_start() -> None:
    board = Board()
    board(WakeWordHeard(now_s=board.now, text="hey computer", preroll=(b"a", b"b")))
    actions = board.ready()
    assert actions.index(SendAudio((b"a", b"b"))) < actions.index(Send(device_message(DETECT)))
    assert sent(actions) == [DETECT, START_AUTO]


def test_wake_word_while_speaking_aborts_then_listens_after_drain() -> None:
    board = speaking()
    actions = board(WakeWordHeard, text="hey computer")
    assert sent(actions) == [ABORT_WAKE] and board.state == S.LISTENING
    assert sent(board(AudioReceived, payload=b"late")) == []  # not speaking: dropped
    assert sent(board(PlaybackDrained)) == [START_AUTO]


def test_wake_word_while_listening_aborts_and_restarts_at_once() -> None:
    board = listening()
    assert sent(board(WakeWordHeard, text="hey computer")) == [ABORT_WAKE, START_AUTO]


def test_tts_start_while_connecting_is_refused() -> None:
    board = Board()
    board(ButtonClicked)
    actions = board.server(TTS_START)
    assert states(actions) == [] and board.state == S.CONNECTING
    board.ready()
    assert board.state == S.LISTENING


def test_channel_failure_is_an_alert_and_idle() -> None:
    board = Board()
    board(ButtonClicked)
    actions = board(ChannelFailed, error="server timeout")
    assert ChannelOpenFailed("error", "server timeout", "sad") in events(actions)
    assert board.state == S.IDLE and board.core.channel == "closed"


def test_server_close_goes_idle_and_our_own_hang_up_reports_nothing() -> None:
    board = listening()
    actions = board(ChannelDropped, reason="server sent Close (code 1000)")
    assert ChannelClosed("server sent Close (code 1000)") in events(actions)
    assert board.state == S.IDLE
    assert board(ChannelDropped, reason="late") == []
    assert OpenChannel() in board(ButtonClicked)


def test_stale_channel_is_replaced_after_the_inactivity_rule() -> None:
    board = Board(channel_timeout_s=120.0)
    board(TalkPressed)
    board.ready()
    board(TalkReleased)
    board.now += 119.0
    assert OpenChannel() not in board(TalkPressed)
    board(TalkReleased)
    board.now += 121.0
    actions = board(TalkPressed)
    assert actions.index(CloseChannel()) < actions.index(OpenChannel())


def test_downlink_audio_played_only_while_speaking_and_late_frames_counted() -> None:
    board = listening()
    assert board(AudioReceived, payload=b"x") == []
    board.server(TTS_START)
    actions = board(AudioReceived, payload=b"1")
    assert PlayAudio(b"1") in actions and ReplyAudioStarted(0) in events(actions)
    assert events(board(AudioReceived, payload=b"2")) == []  # first audio reported once
    board.server(TTS_STOP)
    board(AudioReceived, payload=b"3")
    assert board.core.turn.stale_frames == 1


def test_turn_figures_from_the_true_end_of_speech() -> None:
    board = listening()
    board(SpeechSent)
    board.now += 0.4
    board.server('{"type":"stt","text":"turn on the lamp"}')
    board.now += 0.2
    board.server(TTS_START)
    board(AudioReceived, payload=b"1")
    board.now += 1.0
    board(ButtonClicked)  # abort
    board.now += 0.05
    ended = [e for e in events(board.server(TTS_STOP)) if isinstance(e, TurnEnded)]
    assert ended == [
        TurnEnded(
            turn=0,
            endpoint_ms=400.0,
            first_audio_ms=600.0,
            abort_ms=50.0,
            stale_frames=0,
            stt="turn on the lamp",
        )
    ]


def test_server_messages_become_events_and_unknown_ones_are_ignored() -> None:
    board = listening()
    got: list[DeviceEvent] = []
    for text in (
        '{"type":"stt","text":"hello"}',
        '{"type":"llm","emotion":"happy","text":"x"}',
        '{"type":"tts","state":"sentence_start","text":"Hi."}',
        '{"type":"alert","status":"s","message":"m","emotion":"sad"}',
        '{"type":"custom","payload":{}}',
        '{"type":"system","command":"nope"}',
    ):
        got += events(board.server(text))
    assert [e for e in got if e.kind != "tts"] == [
        SttReceived("hello"),
        EmotionChanged("happy"),
        SentenceStarted("Hi."),
        AlertShown("s", "m", "sad"),
    ]
    assert board.state == S.LISTENING and board.core.emotion == "happy"


def test_reboot_closes_the_channel_and_goes_idle() -> None:
    board = speaking()
    actions = board.server('{"type":"system","command":"reboot"}')
    assert CloseChannel() in actions and RebootRequested() in events(actions)
    assert board.state == S.IDLE


def test_mcp_requests_answered_only_by_mcp_builds() -> None:
    board = listening()
    actions = board.server('{"type":"mcp","payload":{"jsonrpc":"2.0","id":1,"method":"x"}}')
    assert actions == [AnswerMcp({"jsonrpc": "2.0", "id": 1, "method": "x"})]
    reply = board(McpAnswered(now_s=board.now, payload={"jsonrpc": "2.0", "id": 1, "result": {}}))
    assert sent(reply) == [
        '{"session_id":"S1","type":"mcp","payload":{"jsonrpc":"2.0","id":1,"result":{}}}'
    ]
    legacy = listening(mcp=False, legacy_iot=True)
    assert legacy.server('{"type":"mcp","payload":{}}') == []
    commands = legacy.server('{"type":"iot","commands":[{"name":"Lamp","method":"on"}]}')
    assert [type(a) for a in commands] == [ApplyIotCommands]


def test_legacy_iot_descriptors_on_open_and_deltas_before_listen_start() -> None:
    board = Board(mcp=False, legacy_iot=True)
    board(ButtonClicked)
    actions = board.ready()
    order = [a for a in actions if isinstance(a, SendIotDescriptors | SendIotStates | Send)]
    assert order[:3] == [
        SendIotDescriptors(),
        SendIotStates(delta=False),
        SendIotStates(delta=True),
    ]
    assert isinstance(order[3], Send)


def test_abort_request_and_hang_up() -> None:
    board = speaking()
    assert sent(board(AbortRequested(now_s=board.now, reason=AbortReason.WAKE_WORD_DETECTED))) == [
        ABORT_WAKE
    ]
    actions = board(HungUp)
    assert CloseChannel() in actions and board.state == S.IDLE
