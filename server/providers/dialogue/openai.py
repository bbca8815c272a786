"""Any OpenAI-compatible ``/chat/completions`` endpoint, streamed (SSE), with device tools.

Tokens are yielded as they arrive; tool calls are run through ``context.call_tool`` and their
results sent back for the next round. Every failure (refused, HTTP error, timeout, bad JSON)
ends with a short spoken apology; nothing is raised to the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

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
from server.providers.dialogue.openai_tools import ToolNames, tools_payload

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4
MAX_TOOL_RESULT_CHARS = 4000
MAX_LINE_BYTES = 1 << 20
APOLOGY = "Sorry, I can't reach my language model right now."
APOLOGY_CUT = "Sorry, I lost my train of thought."


class LlmError(Exception):
    """The endpoint failed; the message is for the log."""


class LlmUnavailable(LlmError):
    """The endpoint failed before answering anything (raised only with ``raise_unreachable``)."""


@dataclass
class _Round:
    """What one streamed completion produced."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)


class OpenAIDialogue:
    """Streaming chat with function calling; stateless apart from ``context.history``."""

    name = "openai"
    capabilities = DialogueCapabilities(free_text=True, languages=frozenset({"en", "zh"}))

    def __init__(
        self, settings: DialogueSettings | None = None, *, raise_unreachable: bool = False
    ) -> None:
        self.settings = (settings or DialogueSettings()).openai
        self.url = self.settings.base_url.rstrip("/") + "/chat/completions"
        self.raise_unreachable = raise_unreachable
        """Raise :class:`LlmUnavailable` instead of apologising when the endpoint fails before
        any word or tool call (a fallback dialogue then answers)."""

    def phrases(self, tools: Sequence[Tool]) -> list[str]:
        return []  # free text

    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        yield EmotionChosen(Emotion.NEUTRAL.value)
        start = time.monotonic()
        deadline = start + self.settings.timeout_s
        first_deadline = start + self.settings.first_token_timeout_s
        names = ToolNames(context.tools)
        messages = self._messages(utterance, context)
        asked = len(messages)
        spoken: list[str] = []
        failed = False
        headers = {"Content-Type": "application/json"}
        key = self.settings.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=None)
            ) as http:
                for _ in range(MAX_TOOL_ROUNDS):
                    result = _Round()
                    async for piece in self._stream(http, messages, names, context, result,
                                                    first_deadline if not spoken else deadline,
                                                    deadline):  # fmt: skip
                        spoken.append(piece)
                        yield TextDelta(piece)
                    if not result.calls:
                        break
                    first_deadline = deadline  # the next rounds may take the whole budget
                    await self._run_calls(result, names, context, messages, deadline)
        except Exception as exc:  # any failure becomes a spoken apology
            failed = True
            log.warning("LLM request to %s failed: %s: %s", self.url, type(exc).__name__, exc)
            if self.raise_unreachable and not spoken and len(messages) == asked:
                reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
                raise LlmUnavailable(reason[:300]) from exc
        if failed:
            yield EmotionChosen(Emotion.SAD.value)
            yield TextDelta((" " + APOLOGY_CUT) if spoken else APOLOGY)
            return
        if not "".join(spoken).strip():
            yield TextDelta("Done." if len(messages) > 2 else "Sorry, I have no answer.")
        self._remember(context, utterance, "".join(spoken))

    # ------------------------------------------------------------------ request building

    def _messages(self, utterance: str, context: DialogueContext) -> list[dict[str, Any]]:
        keep = 2 * self.settings.max_history_turns
        history = context.history[-keep:] if keep else []
        return [
            {"role": "system", "content": self.settings.system_prompt},
            *history,
            {"role": "user", "content": utterance},
        ]

    def _remember(self, context: DialogueContext, utterance: str, answer: str) -> None:
        keep = 2 * self.settings.max_history_turns
        if not keep:
            context.history.clear()
            return
        context.history.append({"role": "user", "content": utterance})
        context.history.append({"role": "assistant", "content": answer})
        del context.history[:-keep]

    # ------------------------------------------------------------------ streaming

    async def _stream(
        self,
        http: aiohttp.ClientSession,
        messages: list[dict[str, Any]],
        names: ToolNames,
        context: DialogueContext,
        result: _Round,
        first_deadline: float,
        deadline: float,
    ) -> AsyncIterator[str]:
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages, "stream": True}
        if context.tools and context.call_tool is not None:
            body["tools"] = tools_payload(context.tools, names)
        got_first = False
        resp = await _within(http.post(self.url, json=body), first_deadline)
        async with resp:
            if resp.status >= 400:
                detail = (await _within(resp.text(), deadline))[:200]
                raise LlmError(f"HTTP {resp.status}: {detail}")
            while True:
                line = await _within(
                    resp.content.readline(), deadline if got_first else first_deadline
                )
                if not line:
                    break  # end of body without [DONE]: accept what came
                if len(line) > MAX_LINE_BYTES:
                    raise LlmError("SSE line too long")
                text = line.decode("utf-8", errors="replace").strip()
                if not text.startswith("data:"):
                    continue  # blank separators, comments, "event:" lines
                data = text[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise LlmError("stream chunk is not a JSON object")
                if "error" in chunk:
                    raise LlmError(f"endpoint error: {str(chunk['error'])[:200]}")
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        got_first = True
                        result.text.append(content)
                        yield content
                    for call in delta.get("tool_calls") or []:
                        got_first = True
                        _merge_call(result, call)

    async def _run_calls(
        self,
        result: _Round,
        names: ToolNames,
        context: DialogueContext,
        messages: list[dict[str, Any]],
        deadline: float,
    ) -> None:
        calls = [result.calls[i] for i in sorted(result.calls)]
        messages.append(
            {
                "role": "assistant",
                "content": "".join(result.text) or None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"] or "{}"},
                    }
                    for c in calls
                ],
            }
        )
        for call in calls:
            content = await self._call_one(call, names, context, deadline)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})

    async def _call_one(
        self, call: dict[str, str], names: ToolNames, context: DialogueContext, deadline: float
    ) -> str:
        tool = names.to_tool.get(call["name"])
        if tool is None or context.call_tool is None:
            return f"Error: unknown tool {call['name']!r}"
        try:
            arguments = json.loads(call["arguments"] or "{}")
        except json.JSONDecodeError as exc:
            return f"Error: arguments are not valid JSON: {exc}"
        if not isinstance(arguments, dict):
            return "Error: arguments must be a JSON object"
        log.info("LLM calls %s %s", tool, arguments)
        outcome = await _within(context.call_tool(tool, arguments), deadline)
        text = outcome.text[:MAX_TOOL_RESULT_CHARS]
        return f"Error: {text}" if outcome.is_error else text


def _merge_call(result: _Round, call: dict[str, Any]) -> None:
    """Accumulate one streamed tool-call fragment (OpenAI sends name/arguments in pieces)."""
    index = call.get("index", len(result.calls))
    if not isinstance(index, int):
        raise LlmError("tool call index is not an integer")
    slot = result.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    if call.get("id"):
        slot["id"] = str(call["id"])
    function = call.get("function") or {}
    if function.get("name"):
        slot["name"] += str(function["name"])
    if function.get("arguments"):
        slot["arguments"] += str(function["arguments"])
    if not slot["id"]:
        slot["id"] = f"call_{index}"


async def _within(awaitable: Any, deadline: float) -> Any:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise TimeoutError("LLM deadline passed")
    return await asyncio.wait_for(awaitable, remaining)
