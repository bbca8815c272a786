"""Small deterministic fakes of the dialogue and TTS providers, for tests of the layers above."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np

from protocol.mcp import Tool
from server.providers.base import (
    DialogueContext,
    DialogueEvent,
    EmotionChosen,
    ProviderError,
    SpeechAudio,
    TextDelta,
)

ANSWERS = {
    "what time is it": "It is twelve o'clock.",
    "tell me a story": " ".join(
        f"Sentence number {n} of a long story about a lamp and a curtain." for n in range(1, 9)
    ),
    "turn on the kitchen lamp": "The kitchen lamp is on.",
}


class FakeDialogue:
    """Answers the phrases of :data:`ANSWERS`; streams the answer in small pieces."""

    name = "fake"

    def __init__(self, answers: dict[str, str] | None = None, *, delay_s: float = 0.0) -> None:
        self.answers = dict(answers or ANSWERS)
        self.delay_s = delay_s
        self.calls: list[str] = []

    def phrases(self, tools: Sequence[Tool]) -> list[str]:
        return sorted(self.answers)

    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        self.calls.append(utterance)
        yield EmotionChosen("happy")
        answer = self.answers.get(utterance, "I do not know.")
        for word in answer.split(" "):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield TextDelta(word + " ")


class ToneTts:
    """A 440 Hz tone of 60 ms per character at 16 kHz (deterministic length)."""

    name = "tone"

    def __init__(self, *, ms_per_char: float = 60.0, fail_on: str | None = None) -> None:
        self.ms_per_char = ms_per_char
        self.fail_on = fail_on
        self.texts: list[str] = []

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        self.texts.append(text)
        if self.fail_on is not None and self.fail_on in text:
            raise ProviderError("tone failure", code="tts-failed")
        n = int(len(text) * self.ms_per_char * 16)
        t = np.arange(n) / 16000
        pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        return SpeechAudio(pcm, 16000)
