"""The sentences the offline grammar understands, grouped so that a person can read them.

:meth:`LocalDialogue.phrases` lists every sentence one by one (about 2,200 for the simulator's
demo board: "set the volume to zero" … "set the volume to one hundred"). Here each sentence is
matched back to the tool it drives; the number or choice in it becomes a placeholder, and
sentences that then read the same collapse into one line: ``set the volume to <0-100>``,
``set the thermostat mode to <heat|cool|auto|off>``. Conversation phrases are grouped by intent.

Used by ``xiaozhi-server commands`` and to generate ``docs/commands.md``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.mcp import Tool
from server.providers.dialogue import smalltalk
from server.providers.dialogue.local import LocalDialogue, normalize
from server.providers.dialogue.tool_grammar import ToolMatch
from server.text.numbers import parse_number

INTENT_TITLES = {
    "greeting": "greetings", "time": "the time", "date": "the date",
    "capabilities": "what it can do", "identity": "who it is", "thanks": "thanks",
    "goodbye": "goodbye", "story": "a story", "joke": "a joke",
}  # fmt: skip


@dataclass(frozen=True)
class CommandGroup:
    """One heading (a thing, "device" or "conversation") and its readable lines."""

    title: str
    lines: tuple[str, ...]


def demo_board_tools() -> list[Tool]:
    """The MCP tools of the simulator's demo board (``xiaozhi-device`` default)."""
    from iot.things.board import demo_board

    return demo_board().mcp_tools()


def _span(tokens: list[str], words: list[str]) -> tuple[int, int] | None:
    for i in range(len(tokens) - len(words) + 1):
        if tokens[i : i + len(words)] == words:
            return i, i + len(words)
    return None


def _template(tokens: list[str], found: ToolMatch) -> tuple[tuple[str, ...], str | int | None]:
    """The sentence with its value replaced by ``\\0`` and that value (None: no value)."""
    param = found.action.param
    if param is None or param.kind == "boolean":
        return tuple(tokens), None
    value = found.arguments.get(param.name)
    span = None
    if param.kind == "integer":
        for i in range(len(tokens)):
            parsed = parse_number(tokens, i)
            if parsed is not None and parsed[0] == value:
                span = (i, parsed[1])
                break
    elif isinstance(value, str):
        span = _span(tokens, value.split())
    if span is None:
        return tuple(tokens), None
    return (*tokens[: span[0]], "\0", *tokens[span[1] :]), value


def _placeholder(values: list[str | int]) -> str:
    numbers = sorted(v for v in values if isinstance(v, int))
    if numbers and len(numbers) == len(values):
        if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
            return f"<{numbers[0]}-{numbers[-1]}>"
        return "<" + "|".join(str(n) for n in numbers) + ">"
    return "<" + "|".join(str(v) for v in dict.fromkeys(values)) + ">"


def command_groups(
    tools: Sequence[Tool], dialogue: LocalDialogue | None = None
) -> list[CommandGroup]:
    """Every phrase of the local dialogue for ``tools``, collapsed and grouped (conversation
    first, then one group per thing in tool order)."""
    dialogue = dialogue or LocalDialogue()
    grammar = dialogue.grammar(tools)
    intents: dict[str, list[str]] = {}
    # thing -> action key (tool + fixed arguments) -> sentence template -> values in its slot
    things: dict[str, dict[tuple[str, ...], dict[tuple[str, ...], list[str | int]]]] = {}
    for phrase in dialogue.phrases(tools):
        tokens = normalize(phrase)
        found = grammar.match(tokens)
        if found is None:
            intent = smalltalk.match_intent(tokens)
            if intent is None and "status" in tokens:
                actions = things.setdefault("device", {})
                actions.setdefault(("status",), {})[tuple(tokens)] = []
            else:
                intents.setdefault(intent or "other", []).append(phrase)
            continue
        template, value = _template(tokens, found)
        if value is None:
            key = (found.action.tool, *(f"{k}={v}" for k, v in sorted(found.arguments.items())))
        else:
            key = (found.action.tool, type(value).__name__)
        actions = things.setdefault(found.action.thing or "device", {})
        values = actions.setdefault(key, {}).setdefault(template, [])
        if value is not None:
            values.append(value)
    groups = [
        CommandGroup(
            "conversation",
            tuple(
                f"{INTENT_TITLES.get(intent, intent)}: {' / '.join(phrases)}"
                for intent, phrases in intents.items()
            ),
        )
    ]
    for thing, actions in things.items():
        lines: list[str] = []
        for templates in actions.values():
            sentences = [
                " ".join(_placeholder(values) if word == "\0" else word for word in template)
                for template, values in templates.items()
            ]
            lines.append(" / ".join(dict.fromkeys(sentences)))
        groups.append(CommandGroup(thing.replace("_", " "), tuple(lines)))
    return groups


def render_text(groups: Sequence[CommandGroup]) -> str:
    """Plain text for the terminal."""
    out: list[str] = []
    for group in groups:
        out.append(group.title.upper() if group.title == "conversation" else group.title)
        for line in group.lines:
            out += textwrap.wrap(
                line,
                width=100,
                initial_indent="  ",
                subsequent_indent="      ",
                break_on_hyphens=False,
            )
        out.append("")
    return "\n".join(out)


MARKDOWN_HEADER = """# Spoken commands of the offline grammar

<!-- Generated by `xiaozhi-server commands --markdown > docs/commands.md`; do not edit. -->

These are the sentences the local dialogue (`dialogue.provider: local`, the default) acts on,
and the grammar the recogniser's fast path listens for. With the default recogniser (`twopass`)
other speech is transcribed by Whisper and answered "Sorry, I can't help with that" unless an
LLM is configured; with `asr.provider: pocketsphinx` alone it is either misheard as one of these
or not understood ([speech.md](speech.md)). The device commands come from the tools the board
announces (MCP `tools/list`), so a real board gets the commands of its own tools; this list is
for the simulator's demo board (`xiaozhi-device`).
`<0-100>` stands for a number said in words ("set the volume to fifty"), `<a|b>` for one of the
words, ` / ` separates sentences that do the same. For free text see [llm.md](llm.md).
"""


def render_markdown(groups: Sequence[CommandGroup]) -> str:
    """The whole ``docs/commands.md`` page."""
    out: list[str] = [MARKDOWN_HEADER]
    for group in groups:
        out += [f"## {group.title.capitalize()}", ""]
        for line in group.lines:
            label, sentences = line.split(": ", 1) if ": " in line else ("", line)
            code = " / ".join(f"`{sentence}`" for sentence in sentences.split(" / "))
            out.append(f"- {label}: {code}" if label else f"- {code}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
