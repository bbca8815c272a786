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
