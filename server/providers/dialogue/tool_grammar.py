"""Sentences that drive device tools, derived generically from the tool list.

Tool names are ``self.<thing>.<method>`` (or ``self.<method>`` for device-wide tools). Things are
spoken with underscores as spaces ("kitchen lamp"); the last word ("lamp") is an alias for the
first declared thing that ends with it. Methods without parameters become verbs ("turn on the
kitchen lamp", "open the curtain"); ``set_<x>`` with one integer, string (values listed in the
description) or boolean parameter becomes "set the <thing> <param> to <value>" and short forms.
The same templates produce :meth:`ToolGrammar.phrases` and are matched by :meth:`ToolGrammar.match`,
so every phrase is understood.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.mcp import Tool
from server.text.numbers import number_to_words, parse_number

PARTICLES = frozenset({"on", "off", "up", "down"})
UNIT_WORDS = frozenset({"percent", "degrees", "degree", "celsius"})
IGNORED = frozenset({"the"})
"""Words ignored when matching, so "turn on kitchen lamp" works too."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str  # "integer" | "string" | "boolean"
    minimum: int = 0
    maximum: int = 100
    choices: tuple[str, ...] = ()
    unit: str | None = None

    @property
    def spoken(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Action:
    """One device tool as the dialogue sees it."""

    tool: str
    thing: str | None
    method: str
    param: Param | None

    @property
    def thing_spoken(self) -> str:
        return (self.thing or "device").replace("_", " ")

    @property
    def method_words(self) -> list[str]:
        return self.method.split("_")


@dataclass(frozen=True, slots=True)
class Slot:
    """A value position in a template."""


@dataclass(frozen=True)
class Template:
    words: tuple[str | Slot, ...]
    action: Action
    fixed: dict[str, Any] = field(default_factory=dict)
    names_thing: bool = True
    """Whether the sentence names the thing (else the answer names the parameter only)."""
    with_unit: bool = False
    listed: bool = True
    """False: understood but not offered to the ASR grammar (word missing from the dictionary)."""


@dataclass(frozen=True, slots=True)
class ToolMatch:
    action: Action
    arguments: dict[str, Any]
    names_thing: bool
    out_of_range: int | None = None
    """A number outside the parameter's range (the tool is not called)."""


_LIST_SPLIT = re.compile(r",\s*|\s+or\s+|\s*\|\s*|\s*/\s*")


def choices_from_description(description: str) -> tuple[str, ...]:
    """``"Set the mode: heat, cool, auto or off."`` → ``("heat", "cool", "auto", "off")``."""
    text = description.replace("`", "").lower()
    for marker in (":", " can be ", " one of "):
        if marker in text:
            tail = text.rsplit(marker, 1)[1]
            tail = re.split(r"\.(\s|$)|\(", tail, maxsplit=1)[0]
            items = [i.strip().lower() for i in _LIST_SPLIT.split(tail) if i.strip()]
            ok = all(re.fullmatch(r"[a-z]+( [a-z]+){0,2}", i) for i in items)
            if ok and len(items) >= 2:
                return tuple(dict.fromkeys(items))
    return ()


def _unit(name: str, description: str) -> str | None:
    text = f"{name} {description}".lower()
    if "temperature" in text or "degree" in text or "celsius" in text:
        return "degrees"
    if "percent" in text:
        return "percent"
    return None


def to_action(tool: Tool) -> Action | None:
    """The action for a tool, or None if it takes more than one parameter."""
    parts = tool.name.split(".")
    if len(parts) == 3 and parts[0] == "self":
        thing, method = parts[1], parts[2]
    elif len(parts) == 2 and parts[0] == "self":
        thing, method = None, parts[1]
    else:
        return None
    props = tool.input_schema.properties
    if len(props) > 1:
        return None
    param = None
    if props:
        ((name, schema),) = props.items()
        param = Param(
            name=name,
            kind=schema.type,
            minimum=schema.minimum if schema.minimum is not None else 0,
            maximum=schema.maximum if schema.maximum is not None else 100,
            choices=choices_from_description(f"{tool.description} {schema.description or ''}")
            if schema.type == "string"
            else (),
            unit=_unit(name, tool.description) if schema.type == "integer" else None,
        )
        if param.kind == "integer" and param.maximum - param.minimum > 1000:
            param = Param(name, "integer", param.minimum, param.minimum + 1000, unit=param.unit)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", method) or (
        thing is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", thing)
    ):
        return None
    return Action(tool=tool.name, thing=thing, method=method, param=param)


class ToolGrammar:
    """Templates for every supported tool, in tool-list order (first declared wins)."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.actions = [a for t in tools if (a := to_action(t)) is not None]
        self.templates: list[Template] = []
        self._aliases: dict[str, str] = {}  # alias ("lamp") -> first declared thing
        self._param_owner: dict[tuple[str, str], str] = {}  # (kind, param) -> first thing
        for a in self.actions:
            if a.thing is None:
                continue
            short = a.thing.split("_")[-1]
            if short != a.thing:
                self._aliases.setdefault(short, a.thing)
            if a.param is not None and a.method.startswith("set_"):
                self._param_owner.setdefault((a.param.kind, a.param.name), a.thing)
        for a in self.actions:
            self.templates.extend(self._templates(a))

    @property
    def things(self) -> list[str]:
        return list(dict.fromkeys(a.thing for a in self.actions if a.thing))

    def _names(self, thing: str) -> list[tuple[str, ...]]:
        names = [tuple(thing.split("_"))]
        names += [(alias,) for alias, owner in self._aliases.items() if owner == thing]
        return names

    def _templates(self, a: Action) -> Iterator[Template]:
        slot = Slot()
        if a.thing is None:
            words = a.method_words
            rest = tuple(words[1:]) if words[0] == "get" else tuple(words)
            if words[0] == "get":
                yield Template(("what", "is", "the", *rest), a)
                yield Template(("get", "the", *rest), a)
            yield Template(rest, a)
            return
        names = self._names(a.thing)
        m = a.method_words
        p = a.param
        if p is None:
            for name in names:
                yield Template((*m, "the", *name), a)
                if len(m) == 2 and m[1] in PARTICLES:
                    yield Template((m[0], "the", *name, m[1]), a)
                    if m[0] == "turn":
                        yield Template(("switch", m[1], "the", *name), a)
            return
        if not (a.method.startswith("set_") or p.kind == "boolean"):
            return
        pw = tuple(p.spoken.split())
        owner = self._param_owner.get((p.kind, p.name)) == a.thing
        single = (
            sum(
                1 for b in self.actions if b.thing == a.thing and b.param and b.param.kind == p.kind
            )
            == 1
        )
        if p.kind == "boolean":
            verb = a.method.removeprefix("set_")
            on, off = {p.name: True}, {p.name: False}
            for name in names:
                yield Template((verb, "the", *name), a, on)
                yield Template(("turn", "off", "the", *name, verb), a, off)
            if owner:
                yield Template((verb,), a, on, names_thing=False)
                yield Template(("un" + verb,), a, off, names_thing=False, listed=False)
                yield Template(("turn", "off", verb), a, off, names_thing=False)
                yield Template(("turn", verb, "off"), a, off, names_thing=False)
            return
        units: list[tuple[str, ...]] = [()]
        if p.unit:
            units.append((p.unit,))
        # (head words, names the thing, listed): integer forms with an alias ("set the lamp
        # brightness to fifty") are understood but not listed, to keep the grammar small
        forms: list[tuple[tuple[str, ...], bool, bool]] = []
        for k, name in enumerate(names):
            listed = p.kind != "integer" or k == 0
            forms.append((("set", "the", *name, *pw, "to"), True, listed))
            if single:
                forms.append((("set", "the", *name, "to"), True, listed))
        if owner:
            forms.append((("set", "the", *pw, "to"), False, True))
        for head, names_thing, listed in forms:
            if p.kind == "integer":
                # "percent" only where the parameter is not named ("set the curtain to forty
                # percent"), keeping the phrase count down; "degrees" everywhere
                names_param = head[-1 - len(pw) :] == (*pw, "to")
                for unit in units if p.unit == "degrees" or not names_param else [()]:
                    yield Template(
                        (*head, slot, *unit),
                        a,
                        names_thing=names_thing,
                        with_unit=bool(unit),
                        listed=listed,
                    )
            else:
                yield Template((*head, slot), a, names_thing=names_thing)
        if p.kind == "string" and owner:
            yield Template(("switch", "to", slot, *pw), a, names_thing=False)

    # ------------------------------------------------------------------ phrases and matching

    def phrases(self) -> list[str]:
        out: list[str] = []
        for t in self.templates:
            if not t.listed:
                continue
            p = t.action.param
            values: list[str] = [""]
            if any(isinstance(w, Slot) for w in t.words):
                assert p is not None
                if p.kind == "integer":
                    values = [number_to_words(v) for v in range(p.minimum, p.maximum + 1)]
                else:
                    values = list(p.choices)
            for value in values:
                words = [value if isinstance(w, Slot) else w for w in t.words]
                out.append(" ".join(w for w in words if w))
        return list(dict.fromkeys(out))

    def match(self, tokens: Sequence[str]) -> ToolMatch | None:
        """The first template that matches all of ``tokens`` (``"the"`` optional)."""
        toks = [t for t in tokens if t not in IGNORED]
        for t in self.templates:
            found = _match(t, toks)
            if found is not None:
                return found
        if len(toks) > 1 and toks[-1] in UNIT_WORDS:  # "set the volume to 30 percent"
            return self.match(toks[:-1])
        return None


def _match(t: Template, toks: list[str]) -> ToolMatch | None:
    words = [w for w in t.words if w not in IGNORED]
    p = t.action.param
    args: dict[str, Any] = dict(t.fixed)
    i = 0
    out_of_range = None
    for k, w in enumerate(words):
        if isinstance(w, Slot):
            assert p is not None
            if p.kind == "integer":
                parsed = parse_number(toks, i)
                if parsed is None:
                    return None
                value, i = parsed
                if not p.minimum <= value <= p.maximum:
                    out_of_range = value
                args[p.name] = value
            else:
                tail = [x for x in words[k + 1 :] if isinstance(x, str)]
                end = len(toks) - len(tail)
                if end <= i:
                    return None
                value_s = " ".join(toks[i:end])
                if p.choices and value_s not in p.choices:
                    return None
                args[p.name] = value_s
                i = end
        else:
            if i >= len(toks) or toks[i] != w:
                return None
            i += 1
    if i != len(toks):
        return None
    return ToolMatch(t.action, args, t.names_thing, out_of_range)
