"""The efficiency benchmark's paired method: what it counts, and that both sides say the same."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from bench import efficiency
from device.events import SentenceStarted, TurnEnded, UtteranceStarted


def _turn(text: str, server_ms: float) -> dict[str, Any]:
    return {"text": text, "heard": text, "server_cpu_s": server_ms / 1000, "wall_s": 4.0}


def _cost(total_ms: float) -> tuple[dict[str, float], str]:
    cost = dict.fromkeys(efficiency.COMPONENTS, 0.0)
    cost["asr"], cost["tts"] = total_ms / 2000, total_ms / 2000
    return cost, "It is noon."


def test_warm_up_turns_are_left_out_and_the_ratio_is_of_sums() -> None:
    turns = [_turn("a", 2000), _turn("b", 500), _turn("a", 1000), _turn("b", 400)]
    passes = [_cost(100), _cost(100), _cost(900), _cost(400)]
    out = efficiency.summarize(turns, passes, warm_up=1)
    assert out["turns"] == 3 and len(out["warm_up_turns"]) == 1
    assert out["efficiency"] == pytest.approx((100 + 900 + 400) / (500 + 1000 + 400), abs=1e-3)
    assert out["turn_ratio_min"] == 0.2 and out["turn_ratio_max"] == 1.0
    assert out["server_cpu_per_turn_s"] == pytest.approx(1.9 / 3)
    assert "MISS" in out["rows"][-1]["part"]  # 0.737 < 0.9


def test_no_counted_turn_gives_no_figure() -> None:
    out = efficiency.summarize([_turn("a", 900)], [_cost(800)], warm_up=1)
    assert out["efficiency"] is None and out["turns"] == 0


class _Server:
    def __init__(self) -> None:
        self.cpu = 10.0

    def cpu_s(self) -> float:
        return self.cpu


class _Pool:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def submit(self, fn: Any, text: str) -> Future[Any]:
        self.texts.append(text)
        done: Future[Any] = Future()
        done.set_result(_cost(100))
        return done


def test_a_turn_runs_from_the_utterance_to_tts_stop_and_then_its_components() -> None:
    srv, pool = _Server(), _Pool()
    paired = efficiency.PairedTurns(srv, pool, idle_rate=0.0)  # type: ignore[arg-type]
    paired.observe(UtteranceStarted("turn on the lamp"))
    srv.cpu += 0.6
    paired.observe(SentenceStarted("The lamp is on."))
    paired.observe(TurnEnded(1, 250.0, 300.0, None, 0, "turn on the lamp"))
    paired.observe(TurnEnded(2, None, None, None, 0, None))  # no utterance open: not a turn
    assert pool.texts == ["turn on the lamp"]
    (turn,) = paired.turns
    assert turn["server_cpu_s"] == pytest.approx(0.6)
    assert turn["server_answer"] == "The lamp is on." and turn["heard"] == "turn on the lamp"


@pytest.mark.e2e  # loads the default engines (Piper, Whisper base, pocketsphinx)
def test_components_speak_the_answer_the_server_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The components' dialogue calls the demo board's tools, as the server does through MCP:
    a command is confirmed, not answered "Sorry, I can't help with that"."""
    monkeypatch.setattr(efficiency, "_WORKER", {})  # this process's engines, dropped afterwards
    efficiency._init_worker()
    cost, answer = efficiency.components_once("turn on the lamp")
    assert "lamp is on" in answer.lower()
    assert set(cost) == set(efficiency.COMPONENTS) and cost["tts"] > 0 and cost["asr"] > 0
