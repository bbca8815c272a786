"""edge-tts without network: it fails fast and the local fallback speaks (logged once)."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from server.config import TtsSettings
from server.providers.registry import TTS
from server.providers.tts.edge import EdgeTts, decode_mp3


def _fallback_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "edge-tts unavailable" in r.getMessage()]


async def test_offline_falls_back_to_local_engine_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import edge_tts  # noqa: F401  (fails loudly if the extra is missing)

    tts = TTS.create("edge", TtsSettings(provider="edge", fallback="espeak"))
    caplog.set_level(logging.WARNING)
    start = time.perf_counter()
    first = await tts.synthesize("Hello from the fallback voice.")
    elapsed = time.perf_counter() - start
    second = await tts.synthesize("And a second sentence.")
    assert first.sample_rate_hz == 22050 == second.sample_rate_hz  # espeak answered
    assert len(first.pcm) > 22050 // 2
    assert elapsed < 10.0  # offline edge fails fast rather than hanging
    logs = _fallback_logs(caplog)
    assert len(logs) == 1
    assert "espeak" in logs[0]
    assert "ClientConnector" in logs[0]  # the real offline failure, not some other error


async def test_missing_extra_falls_back_with_install_hint(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "edge_tts", None)  # makes `import edge_tts` raise ImportError
    caplog.set_level(logging.WARNING)
    tts = EdgeTts(TtsSettings(provider="edge", fallback="flite"))
    audio = await tts.synthesize("The extra is not installed.")
    await tts.synthesize("Still not installed.")
    assert audio.sample_rate_hz == 16000  # flite answered
    logs = _fallback_logs(caplog)
    assert len(logs) == 1
    assert "pip install 'xiaozhi-py[edge]'" in logs[0]


def test_fallback_never_recurses_into_edge() -> None:
    assert EdgeTts(TtsSettings(fallback="edge")).fallback_name == "flite"


def test_decode_mp3_roundtrip_of_non_mp3_is_clear_error() -> None:
    from server.providers.base import ProviderError

    with pytest.raises(ProviderError, match="decode"):
        decode_mp3(b"not an mp3 at all" * 10)
