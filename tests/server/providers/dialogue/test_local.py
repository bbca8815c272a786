"""The local dialogue against the real simulated board."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pocketsphinx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot.things.board import Board, demo_board
from protocol.enums import Emotion
from protocol.mcp import InputSchema, PropertySchema, Tool
from server.config import DialogueSettings
from server.providers.base import DialogueContext
from server.providers.dialogue.local import LocalDialogue
from server.providers.dialogue.smalltalk import match_intent
from server.providers.registry import DIALOGUE
from server.text import split_sentences
from tests.server.providers.dialogue.conftest import Device, answer_of

DIALOGUE_ENGINE = LocalDialogue(DialogueSettings())


async def ask(text: str, context: DialogueContext, engine: LocalDialogue = DIALOGUE_ENGINE):  # type: ignore[no-untyped-def]
    return answer_of([e async for e in engine.respond(text, context)])


COMMANDS: list[tuple[str, str, dict[str, Any], str, tuple[str, str, Any]]] = [
    # utterance, tool, arguments, spoken answer, (thing, state field, value after)
    ("set the volume to thirty", "self.audio_speaker.set_volume", {"volume": 30},
     "Volume set to 30.", ("audio_speaker", "volume", 30)),
    ("Turn on the kitchen lamp.", "self.kitchen_lamp.turn_on", {}, "The kitchen lamp is on.",
     ("kitchen_lamp", "power", True)),
    ("turn on the lamp", "self.living_room_lamp.turn_on", {}, "The living room lamp is on.",
     ("living_room_lamp", "power", True)),
    ("set the kitchen lamp brightness to fifty", "self.kitchen_lamp.set_brightness",
     {"brightness": 50}, "Kitchen lamp brightness set to 50 percent.",
     ("kitchen_lamp", "brightness", 50)),
    ("set the kitchen lamp color to blue", "self.kitchen_lamp.set_color", {"color": "blue"},
     "Kitchen lamp color set to blue.", ("kitchen_lamp", "color", "blue")),
    ("set the bedroom lamp color to warm white", "self.bedroom_lamp.set_color",
     {"color": "warm white"}, "Bedroom lamp color set to warm white.",
     ("bedroom_lamp", "color", "warm white")),
    ("set the thermostat to twenty one degrees", "self.thermostat.set_temperature",
     {"temperature": 21}, "Thermostat temperature set to 21 degrees.",
     ("thermostat", "target_temperature", 21)),
    ("set the thermostat mode to heat", "self.thermostat.set_mode", {"mode": "heat"},
     "Thermostat mode set to heat.", ("thermostat", "mode", "heat")),
    ("open the curtain", "self.curtain.open", {}, "The curtain is open.",
     ("curtain", "position", 100)),
    ("set the curtain to forty percent", "self.curtain.set_position", {"position": 40},
     "Curtain position set to 40 percent.", ("curtain", "position", 40)),
    ("set the screen brightness to sixty", "self.screen.set_brightness", {"brightness": 60},
     "Screen brightness set to 60.", ("screen", "brightness", 60)),
    ("switch to dark theme", "self.screen.set_theme", {"theme": "dark"}, "Theme set to dark.",
     ("screen", "theme", "dark")),
    ("mute", "self.audio_speaker.set_mute", {"muted": True}, "The audio speaker is muted.",
     ("audio_speaker", "muted", True)),
    ("Please set the volume to 25%.", "self.audio_speaker.set_volume", {"volume": 25},
     "Volume set to 25.", ("audio_speaker", "volume", 25)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "tool", "args", "spoken", "state"), COMMANDS)
async def test_command_drives_device_and_confirms(
    device: Device, text: str, tool: str, args: dict[str, Any], spoken: str,
    state: tuple[str, str, Any],
) -> None:  # fmt: skip
    emotion, answer = await ask(text, device.context())
    assert device.calls == [(tool, args)]
    assert answer == spoken
    assert emotion == Emotion.HAPPY
    thing, prop, value = state
    assert device.board.status()[thing][prop] == value


async def test_close_curtain_and_unmute_undo(device: Device) -> None:
    ctx = device.context()
    await ask("set the curtain to forty percent", ctx)
    await ask("mute", ctx)
    assert (await ask("close the curtain", ctx))[1] == "The curtain is closed."
    assert (await ask("unmute", ctx))[1] == "The audio speaker is unmuted."
    assert (await ask("turn off mute", ctx))[1] == "The audio speaker is unmuted."
    assert device.board.status()["curtain"]["position"] == 0
    assert device.board.status()["audio_speaker"]["muted"] is False


async def test_device_status_is_read_aloud(device: Device) -> None:
    await ask("set the volume to thirty", device.context())
    emotion, answer = await ask("what is the device status", device.context())
    assert device.calls[-1] == ("self.get_device_status", {})
    assert "The audio speaker: volume 30, muted off." in answer
    assert "The curtain: position 0." in answer
    assert emotion == Emotion.THINKING


async def test_tool_failure_is_spoken(device: Device) -> None:
    device.board.inject_failure("self.audio_speaker.set_volume", "speaker is broken")
    emotion, answer = await ask("set the volume to ten", device.context())
    assert answer == "Sorry, I couldn't set the volume: speaker is broken."
    assert emotion == Emotion.SAD


async def test_failing_caller_and_missing_caller_never_raise(device: Device) -> None:
    async def explode(name: str, arguments: dict[str, Any]):  # type: ignore[no-untyped-def]
        raise RuntimeError("router gone")

    ctx = DialogueContext(tools=device.board.mcp_tools(), call_tool=explode)
    assert (await ask("turn on the kitchen lamp", ctx))[1] == (
        "Sorry, I couldn't turn on the kitchen lamp."
    )
    ctx = DialogueContext(tools=device.board.mcp_tools(), call_tool=None)
    assert "no device is connected" in (await ask("open the curtain", ctx))[1]


async def test_out_of_range_number_is_refused_without_calling(device: Device) -> None:
    _, answer = await ask("set the thermostat to forty degrees", device.context())
    assert answer == "Sorry, the temperature must be between 10 and 30."
    assert device.calls == []


@pytest.mark.parametrize(
    ("text", "emotion", "pattern"),
    [
        ("Hello!", Emotion.HAPPY, r"^Hello! How can I help you\?$"),
        ("thank you", Emotion.HAPPY, r"welcome"),
        ("goodbye", Emotion.WINKING, r"^Goodbye"),
        ("what is your name", Emotion.HAPPY, r"Xiaozhi"),
        ("do you like pizza", Emotion.CONFUSED, r"^Sorry, I can't help with that yet"),
    ],
)
async def test_small_talk(device: Device, text: str, emotion: str, pattern: str) -> None:
    got_emotion, answer = await ask(text, device.context())
    assert got_emotion == emotion
    assert re.search(pattern, answer)
    assert device.calls == []


async def test_time_and_date_use_configured_timezone() -> None:
    engine = LocalDialogue(DialogueSettings(timezone_offset_min=330))  # UTC+5:30
    now = datetime.now(UTC) + timedelta(minutes=330)
    _, time_answer = await ask("what time is it", DialogueContext(), engine)
    match = re.fullmatch(r"It is (\d{1,2}):(\d\d) (AM|PM)\.", time_answer)
    assert match
    hour = int(match.group(1)) % 12 + (12 if match.group(3) == "PM" else 0)
    spoken = now.replace(hour=hour, minute=int(match.group(2)))
    assert abs((spoken - now).total_seconds()) < 120
    _, date_answer = await ask("what's the date today?", DialogueContext(), engine)
    assert date_answer.startswith(f"Today is {now:%A}")  # a second around midnight aside
    assert str(now.year) in date_answer


async def test_capabilities_follow_the_tools(device: Device) -> None:
    _, answer = await ask("what can you do", device.context())
    assert "kitchen lamp" in answer and "thermostat" in answer and "curtain" in answer
    _, bare = await ask("what can you do", DialogueContext())
    assert "lamp" not in bare and "time" in bare


async def test_story_is_long() -> None:
    emotion, answer = await ask("tell me a story", DialogueContext())
    assert len(split_sentences(answer)) >= 8
    assert emotion == Emotion.RELAXED


def test_registered_as_local() -> None:
    assert isinstance(DIALOGUE.create("local", DialogueSettings()), LocalDialogue)


# ----------------------------------------------------------------------------- phrases


def _cmu_words() -> set[str]:
    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    return {line.split(" ", 1)[0] for line in path.read_text().splitlines() if line}


def _board() -> Board:
    return demo_board()


PHRASES = DIALOGUE_ENGINE.phrases(_board().mcp_tools())


def test_phrases_are_plain_dictionary_words_and_bounded() -> None:
    assert 100 < len(PHRASES) < 3000
    assert len(set(PHRASES)) == len(PHRASES)
    assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", p) for p in PHRASES)
    words = {w for p in PHRASES for w in p.split()}
    assert words - _cmu_words() == set()
    for expected in ("set the volume to thirty", "set the thermostat to twenty one degrees",
                     "turn on the kitchen lamp", "what is the device status", "tell me a story",
                     "set the volume to one hundred", "switch to dark theme", "mute"):  # fmt: skip
        assert expected in PHRASES


def test_every_phrase_is_understood() -> None:
    grammar = DIALOGUE_ENGINE.grammar(_board().mcp_tools())
    not_understood = [
        p for p in PHRASES if grammar.match(p.split()) is None and match_intent(p.split()) is None
    ]
    assert not_understood == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(phrase=st.sampled_from(PHRASES))
async def test_any_phrase_gets_a_real_answer(phrase: str) -> None:
    device = Device(_board())
    emotion, answer = await ask(phrase, device.context())
    assert emotion != Emotion.CONFUSED
    assert not answer.startswith("Sorry")
    if device.calls:
        assert len(device.calls) == 1


async def test_generic_tools_beyond_the_demo_board() -> None:
    tools = [
        Tool(name="self.ceiling_fan.turn_on", description="Turn the fan on."),
        Tool(
            name="self.ceiling_fan.set_speed",
            description="Set the fan speed.",
            inputSchema=InputSchema(
                properties={"speed": PropertySchema(type="integer", minimum=1, maximum=3)},
                required=["speed"],
            ),
        ),
        Tool(
            name="self.ceiling_fan.set_direction",
            description="Set the direction. One of `forward` | `reverse`.",
            inputSchema=InputSchema(properties={"direction": PropertySchema(type="string")}),
        ),
    ]
    calls: list[tuple[str, dict[str, Any]]] = []

    async def call(name: str, arguments: dict[str, Any]):  # type: ignore[no-untyped-def]
        from iot.tools import ToolOutcome

        calls.append((name, arguments))
        return ToolOutcome("true")

    engine = LocalDialogue()
    phrases = engine.phrases(tools)
    assert "set the ceiling fan speed to three" in phrases
    assert "set the ceiling fan direction to reverse" in phrases
    assert "turn on the fan" in phrases
    ctx = DialogueContext(tools=tools, call_tool=call)
    assert (await ask("set the fan to two", ctx, engine))[1] == "Ceiling fan speed set to 2."
    assert (await ask("turn on the fan", ctx, engine))[1] == "The ceiling fan is on."
    assert calls == [("self.ceiling_fan.set_speed", {"speed": 2}), ("self.ceiling_fan.turn_on", {})]


@pytest.mark.parametrize(
    ("utterance", "language", "confirmation"),
    [
        ("turn on the kitchen lamp", "en-US", "The kitchen lamp is on."),
        ("set the volume to thirty", "en-US", "Volume set to 30."),
        ("打开厨房灯", "zh-CN", None),  # whatever it says on success, told before the call
    ],
)
async def test_the_confirmation_is_told_before_the_tool_call(
    device: Device, utterance: str, language: str, confirmation: str | None
) -> None:
    order: list[str] = []

    async def call(name: str, arguments: dict[str, Any]):  # type: ignore[no-untyped-def]
        order.append("call")
        return await device.call_tool(name, arguments)

    ctx = DialogueContext(
        tools=device.board.mcp_tools(), call_tool=call, language=language, prepare=order.append
    )
    _, answer = await ask(utterance, ctx)
    assert order == [answer, "call"]
    assert confirmation is None or answer == confirmation


async def test_nothing_is_prepared_for_a_status_question_or_a_failed_call(device: Device) -> None:
    prepared: list[str] = []
    ctx = DialogueContext(tools=device.board.mcp_tools(), call_tool=device.call_tool)
    ctx.prepare = prepared.append
    await ask("what is the device status", ctx)
    assert prepared == [] and device.calls  # asked the board, nothing to say ahead
    device.board.inject_failure("self.audio_speaker.set_volume", "speaker is broken")
    _, answer = await ask("set the volume to ten", ctx)
    assert prepared == ["Volume set to 10."] and answer.startswith("Sorry")  # told, not said
