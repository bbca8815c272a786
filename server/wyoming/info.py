"""What the service tells a client that sends ``describe``: one ASR and one TTS program.

Languages come from the providers' declared capabilities; names from the providers, so Home
Assistant shows e.g. "xiaozhi-py speech-to-text (pocketsphinx)".
"""

from __future__ import annotations

from typing import Any

from server.providers.base import AsrCapabilities, AsrProvider, TtsCapabilities, TtsProvider

PROGRAM_URL = ""
"""No public home page: attribution names the project only."""
VERSION = "0.1.0"


def languages_of(caps: AsrCapabilities | TtsCapabilities | None) -> list[str]:
    return sorted(caps.languages) if caps is not None else ["en"]


def describe(asr: AsrProvider | None, tts: TtsProvider | None, voice: str | None) -> Any:
    """The ``wyoming.info.Info`` of this server (``asr``/``tts`` None: that side is not offered)."""
    from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

    who = Attribution(name="xiaozhi-py", url=PROGRAM_URL)
    programs: dict[str, Any] = {}
    if asr is not None:
        name = getattr(asr, "name", "asr")
        langs = languages_of(getattr(asr, "capabilities", None))
        model = AsrModel(
            name=name,
            attribution=who,
            installed=True,
            description=f"{name} recogniser",
            version=VERSION,
            languages=langs,
        )
        programs["asr"] = [
            AsrProgram(
                name="xiaozhi-py-asr",
                attribution=who,
                installed=True,
                description=f"xiaozhi-py speech-to-text ({name})",
                version=VERSION,
                models=[model],
                supports_transcript_streaming=False,
                requires_external_vad=True,
            )
        ]
    if tts is not None:
        name = getattr(tts, "name", "tts")
        langs = languages_of(getattr(tts, "capabilities", None))
        voice_name = voice or name
        tts_voice = TtsVoice(
            name=voice_name,
            attribution=who,
            installed=True,
            description=f"{name} voice",
            version=VERSION,
            languages=langs,
        )
        programs["tts"] = [
            TtsProgram(
                name="xiaozhi-py-tts",
                attribution=who,
                installed=True,
                description=f"xiaozhi-py text-to-speech ({name})",
                version=VERSION,
                voices=[tts_voice],
                supports_synthesize_streaming=True,
            )
        ]
    return Info(**programs)
