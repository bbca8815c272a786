"""Commands through the server's own speech-in chain, at several frame offsets: how often the
endpointer's shortcuts and the recogniser together get a command wrong, and how long the
utterance lasts after the voice stops.

Unlike :mod:`bench.accuracy` (which segments each clip with a fixed pre-roll and tail), every
clip goes through :class:`~server.pipeline.speech_in.SpeechIn` as a board's packets would: 60 ms
Opus packets (the simulator's encoder settings) of the spoken command after 400 ms + ``offset``
of silence, then silence until the endpointer ends the utterance. The offsets move the speech
against the 60 ms packet grid, which is what differs from one real utterance to the next; each
voice is one speaker (its cepstral mean carries over from clip to clip, as a board's does).

A command is *wrong* when the final transcript differs from the text (``phrase_key`` form).
``wait_ms``: from the last voiced sample to the end of the packet that ended the utterance.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from bench.speech_corpus import IN_GRAMMAR, RATE, Clip, speak
from bench.stats import machine, percentile
from device.audio.sources import last_voiced
from iot.things.board import demo_board
from protocol.audio import split_frames
from protocol.opus import OpusEncoder
from server.config import AsrSettings, VadSettings
from server.pipeline.speech_in import SpeechIn, phrase_key
from server.providers.base import AsrProvider, VadProvider
from server.providers.dialogue.local import LocalDialogue

PACKET_SAMPLES: Final = RATE * 60 // 1000
LEAD_MS: Final = 400
TAIL_MS: Final = 1500
"""Silence after the command; the endpointer ends the utterance well before it runs out."""
OFFSETS_MS: Final = (0, 7, 13, 20, 27, 33, 40, 47, 53)
E2E_COMMANDS: Final = (
    "set the volume to thirty", "mute the speaker", "set the screen brightness to fifty",
    "switch to dark theme", "turn on the kitchen lamp", "turn off the kitchen lamp",
    "set the bedroom lamp brightness to forty", "set the kitchen lamp color to blue",
    "set the thermostat to twenty one degrees", "set the thermostat mode to cool",
    "open the curtain", "set the curtain to fifty percent",
)  # fmt: skip
"""The spoken commands of tests/e2e/test_iot_voice.py."""
VOICES: Final = (("flite", "slt"), ("flite", "awb"), ("flite", "rms"), ("espeak", "en-us"))


@dataclass
class Tally:
    commands: int = 0
    wrong: int = 0
    waits_ms: list[float] = field(default_factory=list)
    errors: dict[str, list[int]] = field(default_factory=dict)

    def row(self, voice: str) -> dict[str, Any]:
        def ms(q: float) -> int | None:
            p = percentile(self.waits_ms, q)
            return None if p is None else round(p)

        return {
            "voice": voice,
            "commands": self.commands,
            "wrong": self.wrong,
            "wrong_pct": round(100 * self.wrong / self.commands, 2) if self.commands else None,
            "wait_p50_ms": ms(50),
            "wait_p95_ms": ms(95),
        }


def packets(clip: Clip, offset_ms: int) -> tuple[list[bytes], float]:
    """The board's Opus packets for ``clip`` → (packets, ms of the last voiced sample)."""
    lead = np.zeros(RATE * (LEAD_MS + offset_ms) // 1000, dtype=np.int16)
    audio = np.concatenate([lead, clip.pcm, np.zeros(RATE * TAIL_MS // 1000, dtype=np.int16)])
    encoder = OpusEncoder(RATE, 60, complexity=0, dtx=True)
    frames = split_frames(audio, PACKET_SAMPLES)
    return [encoder.encode(f) for f in frames], last_voiced(audio) * 1000 / RATE


def hear(speech: SpeechIn, sent: Sequence[bytes]) -> tuple[str, float]:
    """One utterance → (final transcript, ms of audio when it ended)."""
    speech.begin(endpointing=True)
    for i, packet in enumerate(sent):
        result = speech.feed(packet, time.monotonic())
        if result.final_text is not None:
            return result.final_text, (i + 1) * 60.0
    return speech.finish().final_text or "", len(sent) * 60.0


def evaluate(
    asr: AsrProvider,
    vad: VadProvider,
    clips: Sequence[Clip],
    phrases: Sequence[str],
    offsets_ms: Sequence[int] = OFFSETS_MS,
) -> Tally:
    tally = Tally()
    for offset in offsets_ms:
        speech = SpeechIn(vad, asr, VadSettings(), speaker=f"{clips[0].label}+{offset}")
        speech.set_phrases(phrases)
        try:
            for clip in clips:
                sent, voice_end_ms = packets(clip, offset)
                text, ended_ms = hear(speech, sent)
                tally.commands += 1
                tally.waits_ms.append(ended_ms - voice_end_ms)
                if phrase_key(text) != clip.text:
                    tally.wrong += 1
                    key = f"{clip.label} {clip.text!r} heard {text!r}"
                    tally.errors.setdefault(key, []).append(offset)
        finally:
            speech.close()
    return tally


def run(quick: bool = False) -> dict[str, Any]:
    """``asr.provider: pocketsphinx`` (the plain grammar), silero VAD, the demo board's phrases."""
    from server.providers.asr.pocketsphinx import PocketsphinxAsr
    from server.providers.vad.silero import SileroVad

    asr = PocketsphinxAsr(AsrSettings(language="en-US"))
    vad = SileroVad(VadSettings())
    phrases = LocalDialogue().phrases(demo_board().mcp_tools())
    texts = list(dict.fromkeys((*E2E_COMMANDS, *IN_GRAMMAR)))
    offsets = OFFSETS_MS[::3] if quick else OFFSETS_MS
    rows, errors, total = [], [], Tally()
    for engine, voice in VOICES[:: 2 if quick else 1]:
        tally = evaluate(asr, vad, speak(texts, engine, voice), phrases, offsets)
        rows.append(tally.row(f"{engine}:{voice}"))
        errors += [f"{k} at offsets {v} ms" for k, v in sorted(tally.errors.items())]
        total.commands += tally.commands
        total.wrong += tally.wrong
        total.waits_ms += tally.waits_ms
    rows.append(total.row("all"))
    return {"machine": machine(), "offsets_ms": list(offsets), "rows": rows, "errors": errors}
