"""Strict settings: a typo anywhere is an error naming the key and the closest valid one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.cli import main
from server.config import REPO_ROOT, load_settings
from server.config_check import check_environment, describe_validation_error, flite_voices
from server.errors import ConfigError


def test_yaml_typo_below_the_top_level_names_key_and_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("websocket: {prot: 28000}\ndialogue:\n  openai: {modle: llama3}\n")
    with pytest.raises(ValidationError) as caught:
        load_settings(config, environ={})
    message = describe_validation_error(caught.value)
    assert "websocket.prot: unknown key; did you mean 'port'?" in message
    assert "dialogue.openai.modle: unknown key; did you mean 'model'?" in message


def test_yaml_typo_through_the_cli_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("websocket: {prot: 28000}\n")
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "websocket.prot" in err and "'port'" in err


def test_unknown_environment_variable_suggests_the_right_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_environment({"XIAOZHI_WEBSOCKT__PORT": "9000"})
    assert "XIAOZHI_WEBSOCKT__PORT" in str(caught.value)
    assert "did you mean XIAOZHI_WEBSOCKET__PORT?" in str(caught.value)

    monkeypatch.setenv("XIAOZHI_WEBSOCKT__PORT", "9000")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "XIAOZHI_WEBSOCKET__PORT" in err


def test_unknown_key_inside_a_section_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="XIAOZHI_TTS__VOICE"):
        check_environment({"XIAOZHI_TTS__VOCE": "slt"})


def test_valid_environment_passes() -> None:
    check_environment(
        {
            "XIAOZHI_WEBSOCKET__PORT": "9000",
            "xiaozhi_tts__voice": "slt",  # pydantic-settings matches case-insensitively
            "XIAOZHI_OTA__HMAC_KEYS__ABC123": "00ff",  # a mapping accepts any key below it
            "XIAOZHI_DIALOGUE": '{"provider": "local"}',  # a whole section as JSON
            "XIAOZHI_TEST_TIME_SCALE": "2",  # the test suite's own variable
            "XIAOZHI_DEVICE_ANYTHING": "x",  # the simulator's
            "PATH": "/bin",
        }
    )


def test_environment_values_still_load() -> None:
    settings = load_settings(
        environ={"XIAOZHI_WEBSOCKET__PORT": "9000"}, websocket={"port": 9000}, log_level="debug"
    )
    assert settings.websocket.port == 9000 and settings.log_level == "DEBUG"


def test_unknown_voice_is_an_error_listing_the_voices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    voices = flite_voices()
    if not voices:
        pytest.skip("flite is not installed (make setup installs it)")
    monkeypatch.setenv("XIAOZHI_TTS__PROVIDER", "flite")
    monkeypatch.setenv("XIAOZHI_TTS__VOICE", "nosuchvoice")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "tts.voice: flite has no voice 'nosuchvoice'" in err
    assert "slt" in err and "kal" in err


def test_unknown_espeak_voice_suggests_close_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.config_check import espeak_voices

    if not espeak_voices():
        pytest.skip("espeak-ng is not installed (make setup installs it)")
    monkeypatch.setenv("XIAOZHI_TTS__PROVIDER", "espeak")
    monkeypatch.setenv("XIAOZHI_TTS__VOICE", "en-uss")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "espeak-ng has no voice 'en-uss'" in err and "en-us" in err


def test_unknown_provider_has_no_make_setup_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XIAOZHI_TTS__PROVIDER", "festival")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown tts provider 'festival'" in err and "flite" in err
    assert "make setup" not in err


def test_missing_configured_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XIAOZHI_VAD__MODEL_PATH", str(tmp_path / "nope.onnx"))
    assert main([]) == 2
    assert "vad.model_path: file" in capsys.readouterr().err


def test_example_config_loads_with_the_strict_loader() -> None:
    settings = load_settings(REPO_ROOT / "config.example.yaml", environ={})
    assert settings.websocket.port == 8000 and settings.ota.port == 8003


def test_example_config_shows_the_current_defaults() -> None:
    """config.example.yaml says its values are the defaults: keep it true when a default moves."""
    import yaml

    from server.config import Settings

    example = yaml.safe_load((REPO_ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    defaults = Settings().model_dump(mode="json")
    moved = []

    def compare(part: dict[str, object], default: dict[str, object], path: str) -> None:
        for key, value in part.items():
            if isinstance(value, dict):
                compare(value, default[key], f"{path}{key}.")  # type: ignore[arg-type]
            elif value != default[key]:
                moved.append(f"{path}{key}: example {value!r}, default {default[key]!r}")

    compare(example, defaults, "")
    assert not moved, moved


def test_missing_default_model_says_make_setup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.config import DEFAULT_MODELS_DIR

    monkeypatch.setenv("XIAOZHI_VAD__MODEL_PATH", str(DEFAULT_MODELS_DIR / "missing_vad.onnx"))
    monkeypatch.setenv("XIAOZHI_WEBSOCKET__HOST", "127.0.0.1")
    monkeypatch.setenv("XIAOZHI_OTA__HOST", "127.0.0.1")
    assert main(["--port", "0", "--http-port", "0"]) == 1  # not a config error: run make setup
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "silero VAD model not found" in err and "make setup" in err
    assert err.count("make setup") == 1
