"""The local dialogue in Mandarin, and strict matching of free-text (Whisper) transcripts."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from server.providers.dialogue import chinese
from server.providers.dialogue.local import LocalDialogue
from tests.server.providers.dialogue.conftest import Device, answer_of


@pytest.mark.parametrize(
    ("said", "call"),
    [("打开台灯", ("self.living_room_lamp.turn_on", {})),
     ("请帮我关灯吧", ("self.living_room_lamp.turn_off", {})),
     ("把厨房的灯打开", ("self.kitchen_lamp.turn_on", {})),
     ("把音量调到三十。", ("self.audio_speaker.set_volume", {"volume": 30})),
     ("音量调到八十五", ("self.audio_speaker.set_volume", {"volume": 85})),
     ("把音量调到百分之五十", ("self.audio_speaker.set_volume", {"volume": 50})),
     ("温度设为二十二度", ("self.thermostat.set_temperature", {"temperature": 22})),
     ("打开窗帘", ("self.curtain.open", {})),
     ("静音", ("self.audio_speaker.set_mute", {"muted": True}))],
)  # fmt: skip
async def test_mandarin_commands(
    device: Device, said: str, call: tuple[str, dict[str, int]]
) -> None:
    _, reply = answer_of([e async for e in LocalDialogue().respond(said, device.context())])
    assert device.calls == [call]
    assert re.search(r"[\u4e00-\u9fff]", reply)


async def test_out_of_range_and_unknown_mandarin(device: Device) -> None:
    d = LocalDialogue()
    _, reply = answer_of([e async for e in d.respond("把音量调到一百五十", device.context())])
    assert reply == "抱歉，音量要在零到一百之间。"
    _, reply = answer_of([e async for e in d.respond("法国的首都是哪里？", device.context())])
    assert reply.startswith("抱歉，这个我还帮不上忙")
    assert not device.calls
    assert not d.understands("音量是多少", device.board.mcp_tools())


def test_spoken_chinese_time_and_date() -> None:
    assert chinese.spoken_time(datetime(2026, 1, 5, 15, 15)) == "现在是下午三点十五分。"
    assert chinese.spoken_time(datetime(2026, 1, 5, 2, 5)) == "现在是凌晨两点零五分。"
    assert chinese.spoken_time(datetime(2026, 1, 5, 9, 0)) == "现在是上午九点整。"
    assert chinese.spoken_date(datetime(2026, 12, 1)) == "今天是十二月一日，星期二。"


@pytest.mark.parametrize(
    "question",
    ["What is the capital of France?", "What is the volume?", "What time does the shop open?",
     "Can you tell me the status of my order?", "What is the date of the French revolution?",
     "Tell me a story about dragons and knights please."],
)  # fmt: skip
async def test_free_text_is_not_mapped_loosely_onto_commands(device: Device, question: str) -> None:
    d = LocalDialogue()
    _, reply = answer_of([e async for e in d.respond(question, device.context())])
    assert reply.startswith("Sorry, I can't help with that")
    assert not device.calls and not d.understands(question, device.board.mcp_tools())


async def test_whisper_style_transcripts_of_commands_still_work(device: Device) -> None:
    d = LocalDialogue()
    for text in ("Set the volume to 30%.", "Turn on the lamp.", "What's the time?"):
        assert d.understands(text, device.board.mcp_tools()), text
    answer_of([e async for e in d.respond("Set the volume to 30%.", device.context())])
    assert device.calls == [("self.audio_speaker.set_volume", {"volume": 30})]
