"""The command line a new user meets: help texts, usage errors, no sound card (issue 13)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from device import cli, swarm


def parsers() -> list[argparse.ArgumentParser]:
    return [cli.build_parser(), swarm.build_parser()]


@pytest.mark.parametrize("parser", parsers(), ids=["device", "swarm"])
def test_help_is_plain_text_with_examples_defaults_and_every_option_explained(
    parser: argparse.ArgumentParser,
) -> None:
    text = parser.format_help()
    assert "``" not in text and ":class:" not in text  # no reStructuredText
    assert "examples:" in text and text.count(f"{parser.prog} ") >= 2
    assert "(default: 30.0)" in text  # --reply-timeout: defaults are shown
    assert "(default: None)" not in text and "(default: False)" not in text
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"


def test_usage_line_names_the_swarm_and_the_ports_are_right() -> None:
    text = cli.build_parser().format_help()
    assert re.search(r"usage: xiaozhi-device \[options\].*\n\s+xiaozhi-device swarm", text)
    assert "8000/xiaozhi/ota" not in text  # the OTA port is 8003
    assert "http://127.0.0.1:8003/xiaozhi/ota/" in text


def test_missing_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--say", "hi"]) == 2
    err = capsys.readouterr().err
    assert "give --ota-url or --ws-url" in err and "ws://127.0.0.1:8000/xiaozhi/v1/" in err
    assert cli.main(["--say", "hi", "--json"]) == 2
    assert result_line(capsys.readouterr().out)["code"] == "usage"
    assert cli.main(["swarm", "-n", "1", "--say", "x"]) == 2


def no_sound_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """sounddevice as on a machine without any audio device."""
    import sounddevice as sd

    def query_devices(*args: Any, **kwargs: Any) -> Any:
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "query_devices", query_devices)


def result_line(out: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in lines].count("result") == 1 and lines[-1]["event"] == "result"
    return lines[-1]


def test_mic_without_an_input_device_says_what_to_use_instead(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("sounddevice")
    no_sound_card(monkeypatch)
    state = str(tmp_path / "s.json")
    code = cli.main(["--ws-url", "ws://127.0.0.1:1/", "--mic", "--json", "--state", state])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        "xiaozhi-device: no microphone (audio input device) found; "
        "use --wav FILE or --say TEXT to speak without a microphone"
    ]
    assert result_line(out)["code"] == "no-sound-device"


def test_speaker_output_without_a_sound_card_is_one_message_and_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("sounddevice")
    no_sound_card(monkeypatch)
    state = str(tmp_path / "s.json")
    argv = ["--ws-url", "ws://127.0.0.1:1/", "--wav", str(tmp_path / "x.wav"), "--json"]
    make_wav(tmp_path / "x.wav")
    code = cli.main([*argv, "--output", "speaker", "--state", state])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no speaker (audio output device) found; use --output FILE.wav" in err
    assert result_line(out)["code"] == "no-sound-device"


def make_wav(path: Path) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)


def test_impossible_builds_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = ["--state", str(tmp_path / "s.json"), "--ws-url", "ws://127.0.0.1:1/"]
    wav = tmp_path / "x.wav"
    make_wav(wav)
    assert cli.main([*state, "--wav", str(wav), "--legacy-iot", "--firmware", "2.4.2"]) == 2
    assert "legacy IoT builds end with v1.7.x" in capsys.readouterr().err
    assert cli.main([*state, "--wav", str(wav), "--glyph-push", "--firmware", "1.7.7"]) == 2
    assert "glyph push exists from v2.4.0" in capsys.readouterr().err
