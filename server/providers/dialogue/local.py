"""The embedded offline dialogue: small talk plus device control derived from the tool list.

Every sentence from :meth:`LocalDialogue.phrases` is understood by :meth:`LocalDialogue.respond`
(the ASR grammar is built from them). Free-text transcripts (Whisper) are matched strictly: after
filler removal the whole utterance must be one of those sentences (a few harmless small-talk
keywords aside), so "what is the capital of France" is never answered with the time and "what is
the volume" never sets it. Chinese utterances are handled by :mod:`.chinese` and answered in
Chinese. :meth:`LocalDialogue.understands` tells a fallback wrapper whether to ask an LLM instead.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from protocol.enums import Emotion
from protocol.mcp import Tool
from server.config import DialogueSettings
from server.providers.base import (
    DialogueCapabilities,
    DialogueContext,
    DialogueEvent,
    EmotionChosen,
    TextDelta,
)
from server.providers.dialogue import chinese, smalltalk
from server.providers.dialogue.tool_grammar import ToolGrammar, ToolMatch

log = logging.getLogger(__name__)

CONTRACTIONS = {"what's": "what is", "it's": "it is", "who's": "who is", "that's": "that is",
                "i'm": "i am", "let's": "let us", "you're": "you are"}  # fmt: skip
LEADING_FILLERS = (("can", "you"), ("could", "you"), ("would", "you"), ("will", "you"),
                   ("please",), ("ok",), ("okay",), ("now",))  # fmt: skip
TRAILING_FILLERS = (("please",), ("for", "me"), ("now",))
MAX_UTTERANCE_CHARS = 500
MAX_REASON_CHARS = 120
MAX_CACHED_GRAMMARS = 8


def normalize(utterance: str) -> list[str]:
    """Lowercase words without punctuation; ``30%`` → ``30 percent``; fillers stripped."""
    text = utterance.lower()[:MAX_UTTERANCE_CHARS]
    text = text.replace("%", " percent ").replace("°c", " degrees ").replace("°", " degrees ")
    text = text.replace("’", "'")
    for short, full in CONTRACTIONS.items():
        text = text.replace(short, full)
    tokens = re.sub(r"[^a-z0-9\-\s]|(?<![0-9\s])-|-(?![0-9])", " ", text).split()
    changed = True
    while changed and tokens:
        changed = False
        for filler in LEADING_FILLERS:
            n = len(filler)
            if tuple(tokens[:n]) == filler and len(tokens) > n:
                tokens, changed = tokens[n:], True
        for filler in TRAILING_FILLERS:
            n = len(filler)
            if tuple(tokens[-n:]) == filler and len(tokens) > n:
                tokens, changed = tokens[:-n], True
    return tokens


def _past(verb: str) -> str:
    return verb + ("d" if verb.endswith("e") else "ed")


class LocalDialogue:
    """Intent engine; no network, no model. ``phrases`` is cached per tool list."""

    name = "local"
    capabilities = DialogueCapabilities(free_text=False, languages=frozenset({"en", "zh"}))

    def __init__(self, settings: DialogueSettings | None = None) -> None:
        self.settings = settings or DialogueSettings()
        self._grammars: OrderedDict[tuple[str, ...], ToolGrammar] = OrderedDict()
        """Per tool list (sessions share the provider); the least recently used is dropped."""
        self._phrases: dict[int, tuple[str, ...]] = {}
        """Phrases per cached grammar (``id``): every session with the same tools gets them
        without rebuilding (~8 ms for 2,000 phrases, on the event loop)."""

    def grammar(self, tools: Sequence[Tool]) -> ToolGrammar:
        key = tuple(t.model_dump_json() for t in tools)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = self._grammars[key] = ToolGrammar(tools)
            while len(self._grammars) > MAX_CACHED_GRAMMARS:
                _, dropped = self._grammars.popitem(last=False)
                self._phrases.pop(id(dropped), None)
        self._grammars.move_to_end(key)
        return grammar

    def phrases(self, tools: Sequence[Tool]) -> list[str]:
        grammar = self.grammar(tools)
        cached = self._phrases.get(id(grammar))
        if cached is None:
            small = [p for phrases in smalltalk.INTENTS.values() for p in phrases]
            cached = tuple(dict.fromkeys([*small, *grammar.phrases()]))
            self._phrases[id(grammar)] = cached
        return list(cached)

    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        try:
            emotion, sentences = await self._answer(utterance, context)
        except Exception:  # never raise out of a dialogue
            log.exception("local dialogue failed on %r", utterance)
            emotion, sentences = Emotion.SAD, ["Sorry, something went wrong."]
        yield EmotionChosen(emotion.value)
        for i, sentence in enumerate(sentences):
            yield TextDelta(sentence if i == 0 else " " + sentence)

    def understands(self, utterance: str, tools: Sequence[Tool]) -> bool:
        """Whether :meth:`respond` would do what ``utterance`` asks (a command or a canned
        answer) rather than say it cannot help: a fallback asks an LLM when this is False."""
        grammar = self.grammar(tools)
        if chinese.has_chinese(utterance):
            text = chinese.normalize(utterance)
            return bool(chinese.match_command(text, grammar) or chinese.match_intent(text))
        tokens = normalize(utterance)
        return bool(tokens) and (
            grammar.match(tokens) is not None or smalltalk.match_intent(tokens) is not None
        )

    async def _answer(self, utterance: str, context: DialogueContext) -> tuple[Emotion, list[str]]:
        if chinese.has_chinese(utterance):
            return await self._answer_zh(utterance, context)
        tokens = normalize(utterance)
        if not tokens:
            return Emotion.CONFUSED, ["Sorry, I didn't hear anything."]
        grammar = self.grammar(context.tools)
        found = grammar.match(tokens)
        if found is not None:
            return await self._run_tool(found, context)
        intent = smalltalk.match_intent(tokens)
        if intent is None:
            return Emotion.CONFUSED, [
                "Sorry, I can't help with that yet.",
                "Ask me what I can do.",
            ]
        example = None
        on = next((a for a in grammar.actions if a.method == "turn_on" and a.thing), None)
        if on is not None:
            example = f"turn on the {on.thing_spoken}"
        sentences = smalltalk.answer(
            intent,
            name=self.settings.assistant_name,
            things=grammar.things,
            example=example,
            timezone_offset_min=self.settings.timezone_offset_min,
        )
        return smalltalk.EMOTIONS[intent], sentences

    async def _answer_zh(
        self, utterance: str, context: DialogueContext
    ) -> tuple[Emotion, list[str]]:
        text = chinese.normalize(utterance)
        grammar = self.grammar(context.tools)
        cmd = chinese.match_command(text, grammar)
        if cmd is not None:
            if cmd.out_of_range:
                return Emotion.CONFUSED, [chinese.range_apology(cmd)]
            if context.call_tool is None:
                return Emotion.SAD, ["抱歉，现在没有连接设备。"]
            if context.prepare is not None:  # its audio is made while the call runs
                context.prepare(chinese.confirmation(cmd))
            try:
                outcome = await context.call_tool(cmd.action.tool, cmd.arguments)
            except Exception as exc:
                log.warning("tool %s raised: %r", cmd.action.tool, exc)
                return Emotion.SAD, [chinese.failure(cmd)]
            if outcome.is_error:
                return Emotion.SAD, [chinese.failure(cmd)]
            return Emotion.HAPPY, [chinese.confirmation(cmd)]
        intent = chinese.match_intent(text)
        if intent is None:
            return Emotion.CONFUSED, list(chinese.NOT_UNDERSTOOD)
        moment = smalltalk.now(self.settings.timezone_offset_min)
        sentences = chinese.answer(intent, things=grammar.things, moment=moment)
        return smalltalk.EMOTIONS[intent], sentences

    # ------------------------------------------------------------------ tools

    async def _run_tool(
        self, found: ToolMatch, context: DialogueContext
    ) -> tuple[Emotion, list[str]]:
        a, p = found.action, found.action.param
        what = _action_phrase(found)
        if found.out_of_range is not None and p is not None:
            return Emotion.CONFUSED, [
                f"Sorry, the {p.spoken} must be between {p.minimum} and {p.maximum}."
            ]
        if context.call_tool is None:
            return Emotion.SAD, [f"Sorry, I can't {what} right now: no device is connected."]
        if context.prepare is not None and a.method != "get_device_status":
            context.prepare(_confirmation(found))  # its audio is made while the call runs
        try:
            outcome = await context.call_tool(a.tool, found.arguments)
        except Exception as exc:
            log.warning("tool %s raised: %r", a.tool, exc)
            return Emotion.SAD, [f"Sorry, I couldn't {what}."]
        if outcome.is_error:
            reason = (
                " ".join(outcome.text.split())[:MAX_REASON_CHARS].rstrip(".") or "no reason given"
            )
            return Emotion.SAD, [f"Sorry, I couldn't {what}: {reason}."]
        if a.method == "get_device_status":
            return Emotion.THINKING, describe_status(outcome.text)
        return Emotion.HAPPY, [_confirmation(found)]


def _label(found: ToolMatch) -> str:
    p = found.action.param
    assert p is not None
    return f"{found.action.thing_spoken} {p.spoken}" if found.names_thing else p.spoken


def _action_phrase(found: ToolMatch) -> str:
    a, p = found.action, found.action.param
    if a.method == "get_device_status":
        return "get the device status"
    if p is None:
        return f"{' '.join(a.method_words)} the {a.thing_spoken}"
    if p.kind == "boolean":
        verb = a.method.removeprefix("set_")
        return f"{verb if found.arguments.get(p.name) else 'un' + verb} the {a.thing_spoken}"
    return f"set the {_label(found)}"


def _confirmation(found: ToolMatch) -> str:
    a, p = found.action, found.action.param
    thing = a.thing_spoken
    if p is None:
        states = {"turn_on": "on", "turn_off": "off", "open": "open", "close": "closed"}
        if a.method in states:
            return f"The {thing} is {states[a.method]}."
        return f"Done: {' '.join(a.method_words)} the {thing}."
    value = found.arguments[p.name]
    if p.kind == "boolean":
        verb = _past(a.method.removeprefix("set_"))
        return f"The {thing} is {verb if value else 'un' + verb}."
    unit = f" {p.unit}" if p.unit else ""
    label = _label(found)
    return f"{label[0].upper()}{label[1:]} set to {value}{unit}."


def _say_value(value: object) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


def describe_status(text: str) -> list[str]:
    """Speakable sentences from ``get_device_status`` JSON (one per thing)."""
    try:
        status = json.loads(text)
    except json.JSONDecodeError:
        return [f"The device says: {text[:MAX_REASON_CHARS]}"]
    if not isinstance(status, dict) or not status:
        return ["The device reported no status."]
    out = []
    for thing, props in status.items():
        name = str(thing).replace("_", " ")
        if isinstance(props, dict):
            parts = [f"{str(k).replace('_', ' ')} {_say_value(v)}" for k, v in props.items()]
            out.append(f"The {name}: {', '.join(parts)}." if parts else f"The {name}.")
        else:
            out.append(f"The {name}: {_say_value(props)}.")
    return out
