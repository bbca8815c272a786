"""``xiaozhi-transcribe`` usage errors end with a message and a status, never a traceback."""

from __future__ import annotations

import pytest

from clients.cli import main


def test_no_audio_source_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sherpa"]) == 1
    assert "give a WAV file or --mic SECONDS" in capsys.readouterr().err


def test_unknown_protocol_is_exit_2() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["carrier-pigeon", "x.wav"])
    assert exit_.value.code == 2


def test_missing_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sequenced", "/nonexistent/speech.wav"]) == 1
    assert "cannot read /nonexistent/speech.wav" in capsys.readouterr().err


def test_microphone_without_a_sound_card_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import sounddevice

        has_input = any(d["max_input_channels"] > 0 for d in sounddevice.query_devices())
    except Exception:
        has_input = False
    if has_input:
        pytest.skip("this machine has a microphone")
    assert main(["sherpa", "--mic", "0.2"]) == 1
    assert "microphone" in capsys.readouterr().err
