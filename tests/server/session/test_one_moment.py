"""A late transcript over an in-memory channel: the board hears "One moment." and then the answer
in the same reply (one ``tts start``, one ``tts stop``), and nothing when it interrupts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from server.config import load_settings
from server.metrics import ServerMetrics
from server.providers.base import AsrCapabilities, Transcript
from server.session.connection import Connection, PeerInfo
from server.session.deps import SessionDeps
from tests.server.fakes import FakeDialogue, ToneTts
from tests.server.session.test_connection import LoudVad, MemoryChannel, utterance_frames


class SlowAsr:
    """A recogniser that answers ``text`` ``delay_s`` after the utterance ended (a busy
    Whisper or a remote service: it has ``finish_async``)."""

    name = "slow"
    sample_rate_hz = 16000
    capabilities = AsrCapabilities(grammar=False, free_text=True)

    def __init__(self, text: str, delay_s: float) -> None:
        self.text, self.delay_s = text, delay_s

    def create_stream(self, phrases: Sequence[str] | None = None) -> SlowAsr:
        return self

    def accept(self, pcm: Any) -> Transcript | None:
        return None

    def finish(self) -> Transcript:
        raise AssertionError("the worker must await finish_async")

    async def finish_async(self) -> Transcript:
        await asyncio.sleep(self.delay_s)
        return Transcript(self.text, is_final=True, language="en")

    def close(self) -> None:
        pass


async def talk(delay_s: float, *, abort: bool = False) -> MemoryChannel:
    deps = SessionDeps(
        settings=load_settings(
            websocket={"hello_timeout_s": 2, "idle_timeout_s": 5}, asr={"slow_notice_s": 0.3}
        ),
        vad=LoudVad(),
        asr=SlowAsr("what time is it", delay_s),  # type: ignore[arg-type]
        dialogue=FakeDialogue(),
        tts=ToneTts(ms_per_char=2),
        executor=ThreadPoolExecutor(2),
        metrics=ServerMetrics(),
    )
    channel = MemoryChannel()
    task = asyncio.create_task(Connection(channel, deps, PeerInfo()).run())
    await channel.open(listen="auto")
    for frame in utterance_frames(1):
        await channel.inbound.put(frame)
    if abort:
        await channel.wait_text("tts")
        await channel.inbound.put('{"session_id":"","type":"abort"}')
        await asyncio.sleep(delay_s + 0.2)  # the late transcript arrives meanwhile
    else:
        await channel.wait_tts_stop()
        await asyncio.sleep(0.2)
    await channel.inbound.put(None)
    await asyncio.wait_for(task, 5)
    return channel


def events(channel: MemoryChannel) -> list[str]:
    out = []
    for m in channel.texts():
        if m["type"] == "stt":
            out.append(f"stt {m['text']}")
        elif m["type"] == "tts":
            out.append(" ".join(filter(None, ("tts", m["state"], m.get("text")))))
    return out


async def test_a_late_transcript_hears_one_moment_then_the_answer_in_one_reply() -> None:
    channel = await talk(0.7)
    assert events(channel) == [
        "tts start",
        "tts sentence_start One moment.",
        "stt what time is it",
        "tts sentence_start It is twelve o'clock.",
        "tts stop",
    ]


async def test_a_prompt_transcript_gets_no_one_moment() -> None:
    channel = await talk(0.05)
    assert events(channel)[:3] == [
        "stt what time is it", "tts start", "tts sentence_start It is twelve o'clock."
    ]  # fmt: skip


async def test_aborting_the_one_moment_drops_the_late_answer() -> None:
    channel = await talk(0.7, abort=True)
    said = events(channel)
    assert said[:2] == ["tts start", "tts sentence_start One moment."]
    assert "stt what time is it" not in said and said.count("tts stop") == 1
