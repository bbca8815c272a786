"""``xiaozhi-conformance device`` end to end: the harness on 127.0.0.1 (free ports) checks the
project's own simulator, run as its ``xiaozhi-device`` command line against the printed OTA URL."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from conformance.cli import main

CHANNEL_TIMEOUT_S = 1.0


def test_device_check_passes_our_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = (
        f"{shlex.quote(sys.executable)} -m device --ota-url {{ota_url}} "
        f"--state {shlex.quote(str(tmp_path / 'state.json'))} "
        f"--channel-timeout {CHANNEL_TIMEOUT_S:g} --conformance-flows"
    )
    junit = tmp_path / "device.xml"
    options = ["--host", "127.0.0.1", "--port", "0", "--ws-port", "0", "--junit", str(junit)]
    options += ["--ota-failures", "0", "--activation-pending", "0"]
    options += ["--channel-timeout", f"{CHANNEL_TIMEOUT_S:g}"]
    code = main(["device", *options, "--command", device])
    out = capsys.readouterr().out
    lines = out.splitlines()
    ota_urls = [line.split()[0] for line in lines if line.strip().startswith("http://127.0.0.1:")]
    assert len(ota_urls) == 1, out  # the OTA URL to enter, printed before the device runs
    running = next(line for line in lines if line.startswith("running: "))
    assert f"--ota-url {ota_urls[0]}" in running
    assert "device command exited with 0" in out
    assert code == 0, out
    assert "16 passed, 0 failed, 1 not applicable" in out  # 8: not observable on the wire
    assert 'failures="0"' in junit.read_text()


def test_device_check_announces_every_local_address(capsys: pytest.CaptureFixture[str]) -> None:
    """On 0.0.0.0 (the default host) the OTA URL is printed for each local address; a device
    that never shows up is a failure that says what to check, not 17 silent N/As."""
    code = main(["device", "--port", "0", "--ws-port", "0", "--command", "false"])
    captured = capsys.readouterr()
    assert "conformance harness on 0.0.0.0" in captured.out
    assert "http://127.0.0.1:" in captured.out and "(this machine only)" in captured.out
    assert "device command exited with 1" in captured.out
    assert "never contacted the harness" in captured.out
    assert code == 1 and "check the OTA URL entered on the board" in captured.err
