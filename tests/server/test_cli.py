"""``xiaozhi-server``: clean start/stop, and one clear line for each start-up problem."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.cli import main

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XIAOZHI_WEBSOCKET__HOST="127.0.0.1",
        XIAOZHI_OTA__HOST="127.0.0.1",
        XIAOZHI_OTA__DB_PATH=str(tmp_path / "devices.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    return env


def test_bad_config_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("websocket:\n  port: 99999\naudio:\n  burst_frames: many\n")
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "websocket.port" in err and "audio.burst_frames" in err


def test_unknown_key_and_missing_file_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("websockets:\n  port: 1\n")
    assert main(["--config", str(config)]) == 2
    assert "websockets" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    config.write_text("websocket: [unclosed\n")
    assert main(["--config", str(config)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_bad_port_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000"]) == 2
    assert "websocket.port" in capsys.readouterr().err


def test_reuse_port_refuses_mqtt_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mqtt.yaml"
    config.write_text("mqtt:\n  enabled: true\n")
    assert main(["--config", str(config), "--workers", "2", "--reuse-port"]) == 2
    err = capsys.readouterr().err
    assert "MQTT" in err and "without --reuse-port" in err and "mqtt.enabled" in err


@pytest.mark.e2e  # starts a real server
def test_runs_until_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", "0", "--http-port", "0"],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert "ready" in ready, ready + (proc.stderr.read() if proc.stderr else "")
        urls = proc.stdout.readline()
        assert "OTA URL http://127.0.0.1:" in urls and "ws://127.0.0.1:" in urls
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "WebSocket listening on" in err


@pytest.mark.e2e  # starts a real server
def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "server", "--port", str(port), "--http-port", "0"],
            cwd=REPO,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "port in use" in last and "Traceback" not in result.stderr, time.monotonic() - t0


def _banner(tmp_path: Path, **env: str) -> tuple[list[str], str]:
    """Start the server with ``env``, read the banner, stop it; (banner lines, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", "0", "--http-port", "0"],
        cwd=REPO,
        env={**_env(tmp_path), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready = proc.stdout.readline()
        assert "ready" in ready, ready + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)  # the banner is written before the signal is handled
        lines = [line.strip() for line in proc.stdout.read().splitlines()]
        err = proc.stderr.read()
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return lines, err


@pytest.mark.e2e
@pytest.mark.e2e  # starts a real server
def test_banner_warns_when_free_text_has_nothing_to_answer_it(tmp_path: Path) -> None:
    lines, err = _banner(
        tmp_path, XIAOZHI_ASR__PROVIDER="pocketsphinx", XIAOZHI_ASR__MODE="lm",
        XIAOZHI_TTS__PROVIDER="flite",
    )  # fmt: skip
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "recognises free text" in warnings[0], lines
    assert "local dialogue only answers its commands" in warnings[0]
    assert err.count("recognises free text") == 1  # logged once, at WARNING
    assert "WARNING" in err


@pytest.mark.e2e
@pytest.mark.e2e  # starts a real server
def test_banner_warns_when_the_llm_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    lines, err = _banner(
        tmp_path,
        XIAOZHI_DIALOGUE__PROVIDER="openai",
        XIAOZHI_DIALOGUE__OPENAI__BASE_URL=f"http://127.0.0.1:{dead}/v1",
        XIAOZHI_ASR__PROVIDER="pocketsphinx",
        XIAOZHI_ASR__MODE="lm",
        XIAOZHI_TTS__PROVIDER="flite",
    )
    warnings = [line for line in lines if "not reachable" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: the openai LLM at"), lines
    assert "local dialogue answers" in warnings[0]
    assert "unavailable at start-up" in err and "Traceback" not in err


HELP_COMMANDS = (
    [],
    ["devices"],
    ["devices", "list"],
    ["devices", "bind"],
    ["commands"],
    ["config-docs"],
    ["models"],
    ["cert"],
)


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "server")
def test_help_texts_are_plain_with_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main([*command, "--help"])  # delegated subcommands return their status
    except SystemExit as exc:  # argparse's own --help exits
        code = exc.code
    assert code == 0
    text = capsys.readouterr().out
    assert "`" not in text  # no raw reStructuredText
    assert "example" in text
    assert "xiaozhi-server " + " ".join(command) in text


def test_every_server_option_is_documented_with_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for option, default in (
        ("--port", "8000"),
        ("--http-port", "8003"),
        ("--log-level", "INFO"),
        ("--config", "config.example.yaml"),
    ):
        options = text[text.index("\noptions:") :]
        line = options[options.index("\n  " + option) :].split("\n  -")[1]
        assert default in line, line
    for command in ("devices", "models", "commands", "config-docs"):
        assert f"\n    {command} " in text


def test_commands_lists_the_grammar_grouped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["commands"]) == 0
    text = capsys.readouterr().out
    assert "fifty" not in text and len(text.splitlines()) < 150
    assert max(len(line) for line in text.splitlines()) <= 100
    assert main(["commands", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "set the volume to <0-100>" in text
    assert "set the thermostat mode to <heat|cool|auto|off>" in text
    assert "what time is it" in text and "turn on the kitchen lamp" in text
    assert "`set the volume to fifty`" not in text  # numbers are ranges, not 101 sentences
