"""Mandarin for the local dialogue: what it does in English, understood and answered in Chinese.

Time (现在几点了), date (今天几号), lamps and curtains on/off (打开台灯,
把客厅的灯关掉), values (把音量调到三十, 亮度调到百分之五十, 温度设为二十二度),
mute (静音 / 取消静音), what it can do (你能做什么) and a little small talk.
Matching is strict (whole utterance against a pattern, fillers such as 请/帮我/一下/吧
removed): anything else is "not understood" rather than a loose guess, so a
free-text Whisper transcript never triggers a command it does not say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from server.providers.dialogue.tool_grammar import Action, ToolGrammar
from server.text.chinese_numbers import number_to_chinese, parse_chinese_number

CJK: Final = re.compile(r"[\u3400-\u9fff]")
_PUNCT = re.compile(r"[\s,.!?;:，。！？；：、~～…\"'“”‘’()（）]+")
FILLERS: Final = (
    "小智",
    "请你",
    "请",
    "帮我",
    "给我",
    "麻烦你",
    "麻烦",
    "你帮我",
    "能不能",
    "可以",
)
TAIL_FILLERS: Final = ("一下吧", "一下", "吧", "呀", "啊", "呢", "哦", "好吗", "可以吗", "谢谢")
WORDS: Final = {"living": "客厅", "room": "", "kitchen": "厨房", "bedroom": "卧室", "lamp": "灯",
                "light": "灯", "curtain": "窗帘", "screen": "屏幕", "audio": "", "speaker": "音箱",
                "thermostat": "空调", "desk": "台"}  # fmt: skip
PARAMS: Final = {"volume": ("音量", "声音"), "brightness": ("亮度",), "temperature": ("温度",),
                 "position": ("位置",)}  # fmt: skip
SET_VERBS: Final = "调到|调成|调至|调为|设为|设置为|设置成|设置到|设成|设到|改为|改成|变成|到|为"
ON = "打开|开启|开一下|开"
OFF = "关闭|关掉|关上|关了|关"
INTENTS: Final = {
    "time": r"(现在|请问现在)?(是)?(几点了?|几点钟了?|什么时间了?|几点几分)",
    "date": r"(今天|今日)(是)?(几号|几月几号|几月几日|星期几|礼拜几|什么日子)",
    "capabilities": r"(你)?(能|会|可以)(做|干|帮我做)?(些)?什么|(你有)?什么功能|帮助|怎么用",
    "greeting": r"(你好|您好|嗨|哈喽|早上好|晚上好)",
    "identity": r"(你是谁|你叫什么(名字)?)",
    "thanks": r"(谢谢|多谢|谢谢你|太感谢了)",
    "goodbye": r"(再见|拜拜|晚安)",
    "joke": r"(讲|说)(个|一个)笑话",
    "story": r"(讲|说)(个|一个)故事",
}
WEEKDAYS: Final = "一二三四五六日"


def has_chinese(text: str) -> bool:
    return CJK.search(text) is not None


def normalize(text: str) -> str:
    """Punctuation, spaces and politeness fillers removed."""
    out = _PUNCT.sub("", text)
    changed = True
    while changed:
        changed = False
        for f in FILLERS:
            if out.startswith(f) and len(out) > len(f):
                out, changed = out[len(f) :], True
        for f in TAIL_FILLERS:
            if out.endswith(f) and len(out) > len(f):
                out, changed = out[: -len(f)], True
    return out


def thing_names(thing: str) -> list[str]:
    """Chinese names of a thing: ``living_room_lamp`` → ["客厅灯", "客厅的灯"]."""
    parts = [WORDS.get(w) for w in thing.split("_")]
    if any(p is None for p in parts):
        return []
    head = "".join(p for p in parts[:-1] if p)
    tail = parts[-1] or ""
    names = [head + tail]
    if head:
        names.append(f"{head}的{tail}")
    return names


@dataclass(frozen=True, slots=True)
class ZhCommand:
    action: Action
    arguments: dict[str, Any]
    spoken_thing: str
    out_of_range: bool = False


def _names(grammar: ToolGrammar) -> dict[str, str]:
    """Chinese name → thing, the bare 灯/台灯/电灯 meaning the first declared lamp."""
    out: dict[str, str] = {}
    for thing in grammar.things:
        for name in thing_names(thing):
            out.setdefault(name, thing)
        if thing.endswith("lamp"):
            for alias in ("灯", "台灯", "电灯"):
                out.setdefault(alias, thing)
    return out


def match_command(text: str, grammar: ToolGrammar) -> ZhCommand | None:
    """The device command ``text`` says, or None (strict: the whole text must match)."""
    names = _names(grammar)
    alt = "|".join(sorted(map(re.escape, names), key=len, reverse=True)) or "(?!)"
    for methods, pattern in (
        (("turn_on", "open"), rf"(?:{ON})(?P<t>{alt})|把?(?P<t2>{alt})(?:{ON})"),
        (("turn_off", "close"), rf"(?:{OFF})(?P<t>{alt})|把?(?P<t2>{alt})(?:{OFF})"),
    ):
        m = re.fullmatch(pattern, text)
        if m:
            said = m.group("t") or m.group("t2")
            action = _find(grammar, names[said], methods)
            if action is not None:
                return ZhCommand(action, {}, said.replace("的", ""))
    if text in ("开灯", "关灯") and "灯" in names:
        action = _find(grammar, names["灯"], ("turn_on",) if text == "开灯" else ("turn_off",))
        if action is not None:
            return ZhCommand(action, {}, "灯")
    if text in ("静音", "取消静音", "关闭静音"):
        mute = next((a for a in grammar.actions if a.method == "set_mute" and a.param), None)
        if mute is not None and mute.param is not None:
            return ZhCommand(mute, {mute.param.name: text == "静音"}, "静音")
    return _match_value(text, grammar, names, alt)


def _find(grammar: ToolGrammar, thing: str, methods: tuple[str, ...]) -> Action | None:
    return next((a for a in grammar.actions if a.thing == thing and a.method in methods), None)


def _match_value(
    text: str, grammar: ToolGrammar, names: dict[str, str], alt: str
) -> ZhCommand | None:
    params = "|".join(w for words in PARAMS.values() for w in words)
    m = re.fullmatch(
        rf"把?(?:(?P<t>{alt})的?)?(?P<p>{params})(?:{SET_VERBS})(?P<n>.+?)(?:度|%)?", text
    )
    if m is None:
        return None
    found = parse_chinese_number(m.group("n"))
    if found is None or found[1] != len(m.group("n")):
        return None
    value = found[0]
    param = next(k for k, words in PARAMS.items() if m.group("p") in words)
    thing = names.get(m.group("t") or "")
    candidates = [
        a
        for a in grammar.actions
        if a.method == f"set_{param}" and a.param is not None and a.param.kind == "integer"
    ]
    if thing is not None:
        candidates = [a for a in candidates if a.thing == thing]
    if not candidates:
        return None
    action = candidates[0]
    assert action.param is not None
    out = not action.param.minimum <= value <= action.param.maximum
    return ZhCommand(action, {action.param.name: value}, PARAMS[param][0], out_of_range=out)


def match_intent(text: str) -> str | None:
    return next((k for k, p in INTENTS.items() if re.fullmatch(p, text)), None)


def spoken_time(moment: datetime) -> str:
    """``现在是下午三点十五分。`` (12-hour clock with the part of the day, as people say it)."""
    h, m = moment.hour, moment.minute
    part = (
        "凌晨"
        if h < 6
        else "上午"
        if h < 12
        else "中午"
        if h < 13
        else "下午"
        if h < 18
        else "晚上"
    )
    hour = h % 12 or 12
    hour_s = "两" if hour == 2 else number_to_chinese(hour)
    minute = "整" if m == 0 else ("零" if m < 10 else "") + number_to_chinese(m) + "分"
    return f"现在是{part}{hour_s}点{minute}。"


def spoken_date(moment: datetime) -> str:
    weekday = WEEKDAYS[moment.weekday()]
    month, day = number_to_chinese(moment.month), number_to_chinese(moment.day)
    return f"今天是{month}月{day}日，星期{weekday}。"


def answer(intent: str, *, things: list[str], moment: datetime) -> list[str]:
    if intent == "time":
        return [spoken_time(moment)]
    if intent == "date":
        return [spoken_date(moment)]
    if intent == "greeting":
        return ["你好！有什么可以帮你？"]
    if intent == "identity":
        return ["我是小智，你的语音助手。"]
    if intent == "thanks":
        return ["不客气！"]
    if intent == "goodbye":
        return ["再见！"]
    if intent == "joke":
        return ["为什么台灯去上学？", "因为它想变得更亮一点！"]
    if intent == "story":
        return ["从前，海边住着一个小机器人。", "暴风雨的夜里，它点亮灯塔，帮渔船平安回家。"]
    listed = "、".join(dict.fromkeys(n for t in things for n in thing_names(t)[:1]))
    out = ["我可以告诉你时间和日期，讲笑话和故事"]
    out[0] += f"，还可以控制{listed}。" if listed else "。"
    if any(t.endswith("lamp") for t in things):
        out.append("比如你可以说：打开台灯。")
    return out


NOT_UNDERSTOOD: Final = ("抱歉，这个我还帮不上忙。", "你可以问我能做什么。")


def confirmation(cmd: ZhCommand) -> str:
    a = cmd.action
    if a.param is None:
        done = "打开" if a.method in ("turn_on", "open") else "关闭"
        return f"{cmd.spoken_thing}已{done}。"
    value = cmd.arguments[a.param.name]
    if a.param.kind == "boolean":
        return "已静音。" if value else "已取消静音。"
    unit = "度" if a.param.unit == "degrees" else ""
    return f"{cmd.spoken_thing}已调到{number_to_chinese(int(value))}{unit}。"


def range_apology(cmd: ZhCommand) -> str:
    p = cmd.action.param
    assert p is not None
    lo, hi = number_to_chinese(p.minimum), number_to_chinese(p.maximum)
    return f"抱歉，{cmd.spoken_thing}要在{lo}到{hi}之间。"


def failure(cmd: ZhCommand) -> str:
    return f"抱歉，没能完成：{cmd.spoken_thing}。"
