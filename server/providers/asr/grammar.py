"""Command phrases → a minimal word graph (finite-state grammar), pure Python.

Phrases are put in a prefix trie whose equal sub-trees are then merged (a minimal acyclic
automaton), so thousands of sentences that share beginnings and endings ("set the volume to
thirty", "set the brightness to thirty") become a small graph. The graph has one final state;
a phrase that is a prefix of another reaches it through an epsilon transition.

:func:`with_garbage_loop` adds a rival path, a free loop of phones (one pseudo-word per phone)
from start to final, so speech that is none of the phrases comes out as phones instead of being
forced onto the nearest command; its per-phone probability sets how easily it wins.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Transition = tuple[int, int, float] | tuple[int, int, float, str]
"""(from, to, probability[, word]); no word = epsilon (pocketsphinx ``create_fsg`` format)."""

MAX_PHRASE_WORDS = 64
PHONES = (
    *("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G"),
    *("HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH"),
    *("T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH"),
)
"""The CMU phone set of pocketsphinx's en-us model."""
GARBAGE_PREFIX = "+garbage_"


def garbage_word(phone: str) -> str:
    """The pseudo-word for one phone of the garbage loop (``+garbage_aa+``)."""
    return f"{GARBAGE_PREFIX}{phone.lower()}+"


def is_garbage(word: str) -> bool:
    return word.startswith(GARBAGE_PREFIX)


def normalize(phrases: Iterable[str]) -> list[tuple[str, ...]]:
    """Lowercase word tuples, deduplicated, sorted; empty and over-long phrases dropped."""
    out = {tuple(p.lower().split()) for p in phrases}
    return sorted(p for p in out if 0 < len(p) <= MAX_PHRASE_WORDS)


def phrase_set_key(phrases: list[tuple[str, ...]]) -> str:
    """Stable hash of a normalized phrase set (cache key and search name)."""
    text = "\n".join(" ".join(p) for p in phrases)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class WordGraph:
    start: int
    final: int
    transitions: list[Transition]
    n_states: int
    phrases: list[tuple[str, ...]]
    """The phrases the graph accepts (after dropping unknown words)."""
    unknown_words: list[str]
    """Words missing from the dictionary (their phrases were dropped)."""


def build_word_graph(
    phrases: Iterable[str], known: Callable[[str], bool] = lambda _w: True
) -> WordGraph:
    """Build the minimal graph for ``phrases``, dropping phrases with words ``known`` rejects.

    Raises ``ValueError`` if no phrase is left.
    """
    unknown: set[str] = set()
    kept: list[tuple[str, ...]] = []
    verdict: dict[str, bool] = {}
    for phrase in normalize(phrases):
        bad = [w for w in phrase if not verdict.setdefault(w, known(w))]
        if bad:
            unknown.update(bad)
        else:
            kept.append(phrase)
    if not kept:
        raise ValueError("no usable phrase for the grammar (all empty or with unknown words)")

    # prefix trie: node id -> {word: child}, plus final flags
    children: list[dict[str, int]] = [{}]
    final: list[bool] = [False]
    for phrase in kept:
        node = 0
        for word in phrase:
            nxt = children[node].get(word)
            if nxt is None:
                nxt = len(children)
                children.append({})
                final.append(False)
                children[node][word] = nxt
            node = nxt
        final[node] = True

    # merge equal sub-trees bottom-up; children always have larger ids than parents
    canon: list[int] = [0] * len(children)
    signatures: dict[tuple[object, ...], int] = {}
    for node in range(len(children) - 1, -1, -1):
        sig = (final[node], tuple(sorted((w, canon[c]) for w, c in children[node].items())))
        canon[node] = signatures.setdefault(sig, len(signatures))

    leaf = signatures[(True, ())]
    transitions: list[Transition] = []
    for (is_final, edges), state in signatures.items():
        assert isinstance(edges, tuple)
        n_out = len(edges) + (1 if is_final and edges else 0)
        for word, dst in edges:
            transitions.append((state, dst, 1.0 / n_out, word))
        if is_final and edges:
            transitions.append((state, leaf, 1.0 / n_out))
    return WordGraph(
        start=canon[0],
        final=leaf,
        transitions=transitions,
        n_states=len(signatures),
        phrases=kept,
        unknown_words=sorted(unknown),
    )


def accepts(graph: WordGraph, words: Iterable[str]) -> bool:
    """Whether ``graph`` accepts this word sequence (for tests and diagnostics)."""
    out: dict[int, list[tuple[int, str | None]]] = {}
    for t in graph.transitions:
        out.setdefault(t[0], []).append((t[1], t[3] if len(t) == 4 else None))

    def closure(states: set[int]) -> set[int]:
        todo, seen = list(states), set(states)
        while todo:
            for dst, word in out.get(todo.pop(), []):
                if word is None and dst not in seen:
                    seen.add(dst)
                    todo.append(dst)
        return seen

    current = closure({graph.start})
    for w in words:
        current = closure({d for s in current for d, word in out.get(s, []) if word == w})
    return graph.final in current


def with_garbage_loop(
    graph: WordGraph,
    phone_probability: float,
    exit_probability: float | None = None,
    min_tail_phones: int = 5,
) -> list[Transition]:
    """``graph``'s transitions plus phone loops that compete with the phrases.

    One loop runs from start to final (speech that shares nothing with the phrases). With
    ``exit_probability``, a second loop can be entered from every state inside a phrase that is
    not yet complete, so "what is the capital of France" becomes "what is the" + phones rather
    than "what is the date today"; that tail is at least ``min_tail_phones`` phones, so it
    cannot steal a short last word ("it", "lamp") of a real command. Measured: no near-command
    question forced onto a command; docs/speech.md.
    """
    start_loop = graph.n_states
    out: list[Transition] = [
        *graph.transitions,
        (graph.start, start_loop, 1.0),
        *((start_loop, start_loop, phone_probability, garbage_word(p)) for p in PHONES),
        (start_loop, graph.final, 1.0),
    ]
    if exit_probability is not None:
        complete = {t[0] for t in graph.transitions if len(t) == 3}  # epsilon to final
        inside = {t[0] for t in graph.transitions} - complete - {graph.start, graph.final}
        chain = [start_loop + 1 + i for i in range(max(1, min_tail_phones))]
        out += [(state, chain[0], exit_probability) for state in sorted(inside)]
        for a, b in itertools.pairwise(chain):
            out += [(a, b, phone_probability, garbage_word(p)) for p in PHONES]
        out += [(chain[-1], chain[-1], phone_probability, garbage_word(p)) for p in PHONES]
        out.append((chain[-1], graph.final, 1.0))
    return out
