"""Text helpers for speech: streaming sentence splitting and English number words."""

from server.text.numbers import number_to_words, parse_number, words_to_number
from server.text.sentences import SentenceSplitter, split_sentences

__all__ = [
    "SentenceSplitter",
    "number_to_words",
    "parse_number",
    "split_sentences",
    "words_to_number",
]
