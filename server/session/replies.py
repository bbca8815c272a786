"""The server's own short sentences (apologies), in each reply language."""

from __future__ import annotations

from enum import StrEnum


class Fixed(StrEnum):
    DIDNT_CATCH_THAT = "didnt-catch-that"
    CANNOT_LISTEN = "cannot-listen"
    """Speech was heard but the recogniser failed."""
    BUSY = "busy"
    """Speech was heard but the recogniser was too busy to start on it in time."""
    SOMETHING_WENT_WRONG = "something-went-wrong"
    ONE_MOMENT = "one-moment"
    """Said while a slow recogniser is still working on what the user said."""
    NO_ANSWER = "no-answer"


_TEXTS: dict[str, dict[Fixed, str]] = {
    "en": {
        Fixed.DIDNT_CATCH_THAT: "Sorry, I didn't catch that.",
        Fixed.CANNOT_LISTEN: "Sorry, I can't understand speech right now. Please try again in a "
        "moment.",
        Fixed.BUSY: "Sorry, I'm busy right now. Please ask me again in a moment.",
        Fixed.SOMETHING_WENT_WRONG: "Sorry, something went wrong. Please try again.",
        Fixed.ONE_MOMENT: "One moment.",
        Fixed.NO_ANSWER: "Sorry, I have no answer to that.",
    },
    "zh": {
        Fixed.DIDNT_CATCH_THAT: "抱歉，我没听清楚。",
        Fixed.CANNOT_LISTEN: "抱歉，我现在听不了，请稍后再试。",
        Fixed.BUSY: "抱歉，我现在有点忙，请稍后再问我一次。",
        Fixed.SOMETHING_WENT_WRONG: "抱歉，出了点问题，请再试一次。",
        Fixed.ONE_MOMENT: "请稍等。",
        Fixed.NO_ANSWER: "抱歉，这个我回答不了。",
    },
}


def base_language(language: str | None, default: str = "en") -> str:
    """``zh-CN`` → ``zh``; unknown or empty → ``default``."""
    if not language:
        return default
    code = language.replace("_", "-").split("-")[0].lower()
    return code if code in _TEXTS else default


def fixed_text(which: Fixed, language: str | None) -> str:
    """The sentence ``which`` in ``language`` (English when there is no translation)."""
    return _TEXTS[base_language(language)][which]
