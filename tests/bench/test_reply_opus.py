"""The word error rate that judges a decoded reply (bench/reply_opus.py and the voice tests)."""

from __future__ import annotations

from bench.reply_opus import token_error_rate, word_error_rate


def test_word_error_rate_counts_word_edits() -> None:
    assert (
        word_error_rate("Sorry, I can't help with that yet.", "sorry I can't help with that yet")
        == 0
    )
    assert (
        word_error_rate(
            "Sorry, I can't help with that yet.", "Sorry, I can't help you with that yet."
        )
        == 1 / 7
    )
    assert word_error_rate("Volume set to 30.", "Volume set to 13.") == 1 / 4
    assert word_error_rate("The lamp is on.", "") == 1


def test_token_error_rate_counts_edits_per_reference_token() -> None:
    assert (
        token_error_rate(["tai", "deng", "yi", "da", "kai"], ["tai", "deng", "er", "da", "kai"])
        == 1 / 5
    )
    assert token_error_rate(["bang", "bu", "shang", "mang"], ["bang", "bu", "shang"]) == 1 / 4
    assert token_error_rate(["a"], ["a", "b", "c"]) == 2
