"""The simulator speaks like a board to a server that is not ours (tests/peers/deviant_server.py:
greets on the wake word, pings, sends llm before every reply, ASR down when not ``working``)."""

from __future__ import annotations

from pathlib import Path

from tests.device.cli_process import run_cli
from tests.peers.deviant_server import DeviantConfig, DeviantServer


async def test_wake_word_request_is_spoken_after_the_greeting_and_answered(
    tmp_path: Path,
) -> None:
    # pings every 0.5 s, too: the board answers them and they do not count as activity
    config = DeviantConfig(working=True, ping_interval_s=0.5)
    async with DeviantServer(config) as server:
        run = await run_cli(
            "--ota-url",
            server.ota_url,
            "--wake-word",
            "hey computer",
            "--say",
            "what time is it",
            "--json",
            "--state",
            str(tmp_path / "state.json"),
        )
    assert run.code == 0, run.err
    result = run.result()
    assert result["ok"] is True and result["code"] is None
    [reply] = result["replies"]
    assert reply["said"] == "what time is it"
    assert (
        reply["stt"] == "what time is it"
    )  # the server's answer to the request, not "hey computer"
    assert reply["sentences"] == ["It is twelve o'clock."]
    session = server.sessions[0]
    [(_, greeting_stop)] = session.greetings
    assert greeting_stop is not None
    # the request was spoken only after the greeting had ended, and then answered
    assert session.loud_frames and min(session.loud_frames) > greeting_stop
    assert len(session.replies) == 1 and session.replies[0][0] > greeting_stop
    events = run.events()
    turns = [e for e in events if e["event"] == "turn"]
    assert [t["stt"] for t in turns] == ["hey computer", "what time is it"]


async def test_a_server_that_never_answers_ends_with_one_timeout_result(tmp_path: Path) -> None:
    async with DeviantServer(DeviantConfig(working=False, greet_on_detect=False)) as server:
        run = await run_cli(
            "--ws-url",
            server.ws_url,
            "--say",
            "what time is it",
            "--reply-timeout",
            "2",
            "--json",
            "--state",
            str(tmp_path / "state.json"),
        )
    assert run.code == 1
    result = run.result()
    assert result["ok"] is False and result["code"] == "reply-timeout"
    assert "the server sent nothing for 2 s" in result["error"]
    assert "reply-timeout" not in run.err and "Traceback" not in run.err
    assert "timed out waiting for the reply to 'what time is it'" in run.err
    assert run.seconds < 20


async def test_legacy_iot_board_is_a_consistent_1_7_build(tmp_path: Path) -> None:
    async with DeviantServer(DeviantConfig(working=True, greet_on_detect=False)) as server:
        run = await run_cli(
            "--ota-url",
            server.ota_url,
            "--legacy-iot",
            "--say",
            "what time is it",
            "--json",
            "--state",
            str(tmp_path / "state.json"),
            "-v",
        )
    assert run.code == 0, run.err
    assert run.result()["replies"][0]["sentences"] == ["It is twelve o'clock."]
    # no MCP announced, so the deviant server never sent initialize
    assert server.sessions[0].mcp_ids_sent == []


async def test_a_server_that_closes_idle_sessions_gets_a_new_one_for_the_next_turn(
    tmp_path: Path,
) -> None:
    # push-to-talk: between turns the board is idle and silent, so the server's idle rule fires
    config = DeviantConfig(working=True, greet_on_detect=False, idle_close_s=1.0)
    async with DeviantServer(config) as server:
        run = await run_cli(
            "--ws-url",
            server.ws_url,
            "--ptt",
            "--say",
            "what time is it",
            "--turns",
            "2",
            "--think",
            "2.5",
            "--json",
            "--state",
            str(tmp_path / "state.json"),
        )
    assert run.code == 0, run.err
    assert [r["stt"] for r in run.result()["replies"]] == ["what time is it"] * 2
    assert len(server.sessions) == 2 and server.sessions[0].closed_idle
