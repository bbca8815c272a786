"""The phrase → word-graph builder (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.providers.asr.grammar import accepts, build_word_graph, normalize, phrase_set_key

VOCAB = ["turn", "on", "off", "the", "lamp", "set", "volume", "to", "thirty"]
phrase = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(phrases=st.lists(phrase, min_size=1, max_size=30), probe=phrase)
def test_graph_accepts_exactly_the_phrases(phrases: list[str], probe: str) -> None:
    graph = build_word_graph(phrases)
    for p in phrases:
        assert accepts(graph, p.split())
    assert accepts(graph, probe.split()) == (probe in phrases)
    assert not accepts(graph, [])
    # probabilities leaving each state sum to one
    totals: dict[int, float] = {}
    for t in graph.transitions:
        totals[t[0]] = totals.get(t[0], 0.0) + t[2]
    assert all(abs(v - 1.0) < 1e-9 for v in totals.values())
    assert graph.final not in totals


def test_shared_structure_keeps_the_graph_small() -> None:
    numbers = [f"{t} {u}" for t in ("twenty", "thirty", "forty") for u in ("one", "two", "three")]
    things = ["volume", "brightness", "kitchen lamp brightness"]
    phrases = [f"set the {t} to {n}" for t in things for n in numbers]
    graph = build_word_graph(phrases)
    assert len(graph.phrases) == 27
    assert graph.n_states <= 10  # a trie would need ~60
    assert accepts(graph, ["set", "the", "kitchen", "lamp", "brightness", "to", "forty", "three"])
    assert not accepts(graph, ["set", "the", "kitchen", "lamp", "to", "forty", "three"])


def test_prefix_phrase_reaches_the_final_state_by_epsilon() -> None:
    graph = build_word_graph(["turn on", "turn on the lamp"])
    assert accepts(graph, ["turn", "on"]) and accepts(graph, ["turn", "on", "the", "lamp"])
    assert not accepts(graph, ["turn", "on", "the"])
    assert any(len(t) == 3 for t in graph.transitions)


def test_unknown_words_drop_their_phrases() -> None:
    graph = build_word_graph(
        ["turn on the lamp", "turn on the blorfy", "zork it"], lambda w: w not in {"blorfy", "zork"}
    )
    assert graph.phrases == [("turn", "on", "the", "lamp")]
    assert graph.unknown_words == ["blorfy", "zork"]
    with pytest.raises(ValueError, match="no usable phrase"):
        build_word_graph(["zork"], lambda w: False)
    with pytest.raises(ValueError):
        build_word_graph(["", "   "])


def test_normalize_and_key_ignore_case_order_and_duplicates() -> None:
    a = normalize(["Turn On", "what  time is it", "turn on"])
    b = normalize(["what time is it", "turn on"])
    assert a == b == [("turn", "on"), ("what", "time", "is", "it")]
    assert phrase_set_key(a) == phrase_set_key(b)
    assert phrase_set_key(a) != phrase_set_key(normalize(["turn on"]))
