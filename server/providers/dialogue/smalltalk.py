"""Canned conversation for the local dialogue: greetings, time, date, story, thanks, goodbye."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from protocol.enums import Emotion

GREETING = ("hello", "hi", "hey", "hello there", "hi there", "good morning", "good afternoon",
            "good evening")  # fmt: skip
INTENTS: dict[str, tuple[str, ...]] = {
    "greeting": GREETING,
    "time": (
        "what time is it",
        "what is the time",
        "tell me the time",
        "what time is it now",
        "what is the time now",
        "tell me what time it is",
        "do you know what time it is",
    ),
    "date": (
        "what is the date",
        "what is the date today",
        "what day is it",
        "what day is it today",
        "what is today",
    ),
    "capabilities": ("what can you do", "help", "help me", "what can i say"),
    "identity": ("who are you", "what is your name"),
    "thanks": ("thank you", "thanks", "thank you very much", "thanks a lot"),
    "goodbye": ("goodbye", "bye", "bye bye", "good night", "see you later"),
    "story": ("tell me a story", "tell a story", "tell me a long story", "tell me another story"),
    "joke": ("tell me a joke", "tell a joke"),
}
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("thanks", ("thank", "thanks")),
    ("goodbye", ("bye", "goodbye", "good night")),
    ("greeting", GREETING),
)
"""Keywords only for answers that cannot be wrong (time, date, status and the like must be asked
in so many words: "what time does the shop open" is not a time question)."""
MAX_KEYWORD_TOKENS = 4
EMOTIONS = {
    "greeting": Emotion.HAPPY, "time": Emotion.NEUTRAL, "date": Emotion.NEUTRAL,
    "capabilities": Emotion.CONFIDENT, "identity": Emotion.HAPPY, "thanks": Emotion.HAPPY,
    "goodbye": Emotion.WINKING, "story": Emotion.RELAXED, "joke": Emotion.LAUGHING,
}  # fmt: skip

STORY = (
    "Once upon a time, in a small house by the sea, there lived a little robot named Pip.",
    "Every morning, Pip opened the curtains and watched the boats leave the harbor.",
    "One day, a storm rolled in, and all the lights in the village went dark.",
    "The fishermen could not find their way home through the wind and the rain.",
    "Pip climbed to the top of the lighthouse with a lamp in each hand.",
    "He turned both lamps to their brightest setting and waved them slowly from side to side.",
    "One by one, the boats followed the light and came safely back to shore.",
    "The villagers cheered, and the children wrapped Pip in a warm blue blanket.",
    "From that night on, Pip kept the lighthouse shining whenever the sky turned grey.",
    "And that is the story of the little robot who became the keeper of the light.",
)
JOKE = (
    "Why did the lamp go to school?",
    "Because it wanted to be a little brighter!",
)


def match_intent(tokens: Sequence[str]) -> str | None:
    """Exact phrase first, then (short utterances only) the harmless keywords."""
    text = " ".join(tokens)
    for intent, phrases in INTENTS.items():
        if text in phrases:
            return intent
    if len(tokens) > MAX_KEYWORD_TOKENS:
        return None
    padded = f" {text} "
    for intent, words in KEYWORDS:
        if any(f" {w} " in padded for w in words):
            if intent == "greeting" and tokens and tokens[0] not in (*GREETING[:3], "good"):
                continue
            return intent
    return None


def now(timezone_offset_min: int | None) -> datetime:
    if timezone_offset_min is None:
        return datetime.now().astimezone()
    return datetime.now(timezone(timedelta(minutes=timezone_offset_min)))


def spoken_time(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"It is {hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}."


def spoken_date(moment: datetime) -> str:
    return f"Today is {moment.strftime('%A')}, {moment.strftime('%B')} {moment.day}, {moment.year}."


def answer(intent: str, *, name: str, things: Sequence[str], example: str | None,
           timezone_offset_min: int | None) -> list[str]:  # fmt: skip
    """The sentences for a small-talk intent."""
    if intent == "greeting":
        return ["Hello! How can I help you?"]
    if intent == "time":
        return [spoken_time(now(timezone_offset_min))]
    if intent == "date":
        return [spoken_date(now(timezone_offset_min))]
    if intent == "identity":
        return [f"I am {name}, your voice assistant."]
    if intent == "thanks":
        return ["You are welcome!"]
    if intent == "goodbye":
        return ["Goodbye! Talk to you soon."]
    if intent == "story":
        return list(STORY)
    if intent == "joke":
        return list(JOKE)
    # capabilities
    base = "I can tell you the time and the date, tell a story"
    if not things:
        return [base + ", and chat a little."]
    spoken = [t.replace("_", " ") for t in things]
    listed = (
        spoken[0] if len(spoken) == 1 else ", the ".join(spoken[:-1]) + " and the " + spoken[-1]
    )
    out = [f"{base}, and control the {listed}."]
    if example:
        out.append(f"For example, say: {example}.")
    return out
