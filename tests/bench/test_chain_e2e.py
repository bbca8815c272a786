"""``xiaozhi-bench chain`` against a real server subprocess (the offline defaults): connect and
hello are timed, every turn of the swarm gets first audio, capacity and the JSON report say so;
--compare runs a second server (here the same one, by its OTA URL) on the same script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli
from bench.serverproc import ServerProcess

pytestmark = pytest.mark.e2e


def test_chain_measures_a_server_and_compares_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "chain.json"
    with ServerProcess() as srv:
        status = cli.main(
            [
                "chain",
                "--url",
                srv.ws_url,
                "--compare",
                srv.ota_url,
                "--label",
                "ours",
                "--label",
                "ours-via-ota",
                "-n",
                "1",
                "--turns",
                "1",
                "--say",
                "what time is it",
                "--think",
                "0.3",
                "--hello-probes",
                "3",
                "--target-ms",
                "5000",
                "--expect-ms",
                "0,0,0",
                "--json",
                str(report_file),
            ]
        )
    assert status == 0
    report = json.loads(report_file.read_text())
    assert [s["label"] for s in report["servers"]] == ["ours", "ours-via-ota"]
    for server in report["servers"]:
        assert server["connect_ms"]["n"] == 3 and server["hello_ms"]["p50"] is not None
        (row,) = server["rows"]
        assert (row["n"], row["turns"], row["errors"]) == (1, 1, 0)
        assert 0 < row["first_audio_ms"]["p50"] < 5000
        assert row["frames"] > 0 and row["ok"] and server["capacity"] == 1
        assert server["overhead_ms"][0]["p50"] == pytest.approx(
            row["first_audio_ms"]["p50"] - 400, abs=0.2
        )
    out = capsys.readouterr().out
    assert "connect and hello" in out and "ours-via-ota" in out


def test_chain_without_a_server_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["chain"])
    assert exc.value.code == 2
    assert "--url" in capsys.readouterr().err


def test_chain_against_a_closed_port_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["chain", "--url", "ws://127.0.0.1:9/xiaozhi/v1/", "-n", "1"]) == 1
    assert "xiaozhi-bench chain:" in capsys.readouterr().err
