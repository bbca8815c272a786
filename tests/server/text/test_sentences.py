from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.text import SentenceSplitter, split_sentences


def stream(text: str, chunk: int = 1, **kwargs: int) -> tuple[list[list[str]], list[str]]:
    """Feed ``text`` in chunks; return what each feed gave and what flush gave."""
    splitter = SentenceSplitter(**kwargs)
    fed = [splitter.feed(text[i : i + chunk]) for i in range(0, len(text), chunk)]
    return fed, splitter.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    text = "Hello there. How are you? I am fine!"
    fed, rest = stream(text)
    flat = [s for part in fed for s in part]
    assert flat == ["Hello there.", "How are you?"]
    assert rest == ["I am fine!"]
    # "Hello there." is released when the space after it arrives
    assert fed[len("Hello there. ") - 1] == ["Hello there."]


def test_decimals_and_abbreviations_stay_whole() -> None:
    text = "Mr. Smith paid 3.5 dollars, e.g. a lot. Dr. Who agreed."
    assert split_sentences(text) == ["Mr. Smith paid 3.5 dollars, e.g. a lot.", "Dr. Who agreed."]
    fed, rest = stream("It is 3.", chunk=8)
    assert fed == [[]]  # "3." might continue as "3.5"
    assert rest == ["It is 3."]


def test_chinese_punctuation_ends_sentences_immediately() -> None:
    fed, rest = stream("你好。今天天气很好！你呢？", chunk=3)
    assert fed == [[], ["你好。"], [], ["今天天气很好！"], []]  # each out with the next chunk
    assert rest == ["你呢？"]


def test_first_long_sentence_is_cut_early_at_a_comma() -> None:
    text = "Once upon a time in a land far away, there lived a robot, who loved music. The end."
    parts = split_sentences(text, first_clause_chars=30)
    assert parts == [
        "Once upon a time in a land far away,",
        "there lived a robot, who loved music.",
        "The end.",
    ]
    # short first clauses are not cut
    assert split_sentences("Yes, I can do that.", first_clause_chars=30) == ["Yes, I can do that."]
    chinese = "我们今天去公园散步吧，天气真的非常非常好，阳光也很温暖明亮，走吧。"
    assert split_sentences(chinese, first_clause_chars=10)[0] == "我们今天去公园散步吧，"


def test_quotes_newlines_and_long_text() -> None:
    assert split_sentences('He said "stop." Then left.') == ['He said "stop."', "Then left."]
    assert split_sentences("line one\nline two") == ["line one", "line two"]
    long = "word " * 100
    parts = split_sentences(long)
    assert all(len(p) <= 300 for p in parts) and len(parts) == 2
    assert split_sentences("...  !!") == []


@given(st.text(alphabet="ab ,.!?3。，\n", max_size=80), st.integers(min_value=1, max_value=7))
def test_chunking_does_not_change_the_result(text: str, chunk: int) -> None:
    fed, rest = stream(text, chunk)
    chunked = [s for part in fed for s in part] + rest
    assert chunked == split_sentences(text, first_clause_chars=30)
    # no letters or digits are lost, added or reordered
    assert [c for c in "".join(chunked) if c.isalnum()] == [c for c in text if c.isalnum()]
