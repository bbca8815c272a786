"""Whisper's verdict (pure): noise → nothing, unusable speech → rejected, loops collapsed."""

from __future__ import annotations

import pytest

from server.config import WhisperSettings
from server.providers.asr.grammar import build_word_graph, with_garbage_loop
from server.providers.asr.whisper import Decoded, collapse_repeats, judge, spoken_language
from server.providers.base import ProviderUnavailable
from server.providers.tts.routing import language_of, runs


def decoded(
    text: str, logprob: float = -0.2, no_speech: float = 0.01, ratio: float = 1.0
) -> Decoded:
    return Decoded(text, "en", logprob, no_speech, ratio, 0.1)


def test_verdicts() -> None:
    s = WhisperSettings()
    ok = judge(decoded("Turn on the lamp."), s)
    assert ok.text == "Turn on the lamp." and not ok.rejected and ok.confidence
    assert judge(decoded(" ... "), s).text == ""
    noise = judge(decoded("Thank you.", logprob=-0.5, no_speech=0.4), s)
    assert noise.text == "" and not noise.rejected
    silent = judge(decoded("Hmm hmm", logprob=-1.2, no_speech=0.9), s)
    assert silent.text == "" and not silent.rejected
    mumble = judge(decoded("Can I ever bring to all the sale", logprob=-0.95), s)
    assert mumble.rejected and mumble.text
    assert judge(decoded("la la la la la la", ratio=3.0), s).rejected


def test_repetition_loops_are_collapsed() -> None:
    assert collapse_repeats("打开台灯打开台灯打开台灯打") == "打开台灯"
    assert collapse_repeats("The lap is on. The lap is on.") == "The lap is on."
    assert collapse_repeats("set the volume to thirty") == "set the volume to thirty"


def test_language_setting() -> None:
    assert [spoken_language(v) for v in ("en-US", "zh-CN", "auto", "cmn")] == [
        "en",
        "zh",
        None,
        "zh",
    ]
    with pytest.raises(ProviderUnavailable):
        spoken_language("fr")


def test_garbage_loops_compete_from_start_and_inside_phrases() -> None:
    graph = build_word_graph(["turn on the lamp", "what time is it"])
    transitions = with_garbage_loop(graph, 3e-4, 1e-3, min_tail_phones=5)
    garbage = [t for t in transitions if len(t) == 4 and str(t[3]).startswith("+garbage_")]
    assert len(garbage) == 39 * 6  # the start loop, a 5-phone chain, the tail loop
    entries = {t[0] for t in transitions if len(t) == 3 and t[1] > graph.n_states}
    assert graph.start not in entries and entries  # tails start inside phrases only


def test_routing_splits_mixed_text() -> None:
    assert runs("打开 Spotify 好吗") == [("zh", "打开"), ("en", "Spotify"), ("zh", "好吗")]
    assert runs("音量已调到30。") == [("zh", "音量已调到30。")]
    assert language_of("The lamp is on.", None) == "en"
    assert language_of("Hello", "zh-CN") == "zh" and language_of("你好", None) == "zh"
