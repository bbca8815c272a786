"""Provider faults over a real socket: each gives the board a spoken answer framed by exactly one
``tts start``/``tts stop``, is counted by its error code, and the next turn works.

The real offline engines are wrapped so a test can break one of them on purpose: the TTS raises
or hangs (the fallback voice speaks instead), the recogniser raises (the user hears that speech
cannot be understood right now), the dialogue raises (an apology) or stalls after its first
sentence (the reply is ended at ``dialogue.reply_timeout_s``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Providers, Server
from server.errors import ProviderError
from server.providers.base import (
    AsrStream,
    DialogueContext,
    DialogueEvent,
    SpeechAudio,
    TextDelta,
    Transcript,
)
from tests.e2e.conftest import device, is_msg, running_server
from tests.e2e.firmware_client import FirmwareClient
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Faults:
    tts: str = ""
    """``raise`` or ``hang``."""
    asr: bool = False
    dialogue: str = ""
    """``raise`` or ``stall``."""


@dataclass
class BreakableTts:
    inner: Any
    faults: Faults
    name: str = "breakable"

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        if self.faults.tts == "raise":
            raise RuntimeError("the TTS engine crashed")
        if self.faults.tts == "hang":
            await asyncio.sleep(3600)
        audio: SpeechAudio = await self.inner.synthesize(text, language=language)
        return audio


class _FailingStream:
    def __init__(self, inner: AsrStream) -> None:
        self.inner = inner

    def accept(self, pcm: Pcm) -> Transcript | None:
        return self.inner.accept(pcm)

    def finish(self) -> Transcript:
        raise ProviderError("decoder crashed", code="asr-failed")

    def close(self) -> None:
        self.inner.close()


@dataclass
class BreakableAsr:
    inner: Any
    faults: Faults
    name: str = "breakable"
    sample_rate_hz: int = 16000

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def create_stream(self, phrases: Sequence[str] | None = None) -> Any:
        stream = self.inner.create_stream(phrases)
        return _FailingStream(stream) if self.faults.asr else stream


@dataclass
class BreakableDialogue:
    inner: Any
    faults: Faults
    name: str = "breakable"
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def phrases(self, tools: Sequence[Any]) -> list[str]:
        phrases: list[str] = self.inner.phrases(tools)
        return phrases

    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        if self.faults.dialogue == "raise":
            raise RuntimeError("the dialogue engine crashed")
        if self.faults.dialogue == "stall":
            yield TextDelta("Let me think about that for a very long while. ")
            await self.release.wait()
        async for event in self.inner.respond(utterance, context):
            yield event


async def turn(board: FirmwareClient, pcm: Pcm) -> tuple[list[Any], list[dict[str, Any]]]:
    """One auto-mode turn: speak, stream silence until ``tts stop``; (binary frames, texts)."""
    start = len(board.events)
    await board.listen_start(ListenMode.AUTO)
    await board.speak(pcm)
    stopped = lambda: any(is_msg("tts", "stop")(e) for e in board.events[start:])  # noqa: E731
    await board.stream_silence(stopped, max_s=scaled(30))
    await board.wait_for(is_msg("tts", "stop"), scaled(5), start=start)
    events = board.events[start:]
    return [e for e in events if e.kind == "binary"], [e.data for e in events if e.kind == "text"]


def errors(server: Server, code: str) -> float:
    text = server.metrics.render().decode()
    match = re.search(rf'xiaozhi_errors_total\{{code="{re.escape(code)}"\}} ([0-9.]+)', text)
    return float(match.group(1)) if match else 0.0


def tts_states(texts: list[dict[str, Any]]) -> list[str]:
    return [t["state"] for t in texts if t.get("type") == "tts" and t["state"] in ("start", "stop")]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"tts": "raise"}, "tts-engine-failed"),
        ({"tts": "hang"}, "tts-timeout"),
        ({"asr": True}, "asr-failed"),
        ({"dialogue": "raise"}, "turn-failed"),
        ({"dialogue": "stall"}, "reply-timeout"),
    ],
)
async def test_a_provider_fault_is_answered_counted_and_the_next_turn_works(
    providers: Providers,
    tmp_path: Path,
    speech: Callable[[str, str], Pcm],
    fault: dict[str, Any],
    code: str,
) -> None:
    faults = Faults()
    dialogue = BreakableDialogue(providers.dialogue, faults)
    broken = Providers(
        vad=providers.vad,
        asr=BreakableAsr(providers.asr, faults),  # type: ignore[arg-type]
        dialogue=dialogue,  # type: ignore[arg-type]
        tts=BreakableTts(providers.tts, faults),  # type: ignore[arg-type]
        fallback_tts=providers.tts,
    )
    sections = {
        "tts": {"timeout_s": 1.0},
        "dialogue": {"reply_timeout_s": 2.0, "tool_call_timeout_s": 1.0},
    }
    async with running_server(broken, tmp_path, **sections) as server, device(server) as board:
        for key, value in fault.items():
            setattr(faults, key, value)
        frames, texts = await turn(board, speech("what time is it", "flite"))
        assert tts_states(texts) == ["start", "stop"], texts
        assert len(frames) > 5, "a spoken answer, not silence"
        assert errors(server, code) >= 1
        dialogue.release.set()
        faults.tts, faults.asr, faults.dialogue = "", False, ""
        frames, texts = await turn(board, speech("what time is it", "flite"))
        assert tts_states(texts) == ["start", "stop"]
        assert any(t.get("type") == "stt" and t["text"] == "what time is it" for t in texts)
        sentences = [t["text"] for t in texts if t.get("state") == "sentence_start"]
        assert any(re.search(r"\d|o'clock|it is", s, re.I) for s in sentences), sentences
