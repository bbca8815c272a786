"""A question the commands cannot answer reaches an LLM with the words the user said."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bench.accuracy import hear, segment
from bench.speech_corpus import board_chunks, speak
from iot.things.board import demo_board
from server.config import DialogueSettings, OpenAISettings
from server.providers.asr.twopass import TwoPassAsr
from server.providers.base import DialogueContext, TextDelta
from server.providers.dialogue.local import LocalDialogue
from server.providers.dialogue.openai import OpenAIDialogue
from server.providers.vad.silero import SileroVad
from tests.server.providers.dialogue.test_openai import FakeLlm, chunk, llm, sse

__all__ = ["llm"]


async def test_out_of_grammar_question_reaches_the_llm_verbatim(
    llm: tuple[FakeLlm, str], twopass: TwoPassAsr, vad: SileroVad, dialogue: LocalDialogue
) -> None:
    fake, url = llm

    async def answer(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk({"content": "Paris."})])

    fake.handler = answer
    tools = demo_board().mcp_tools()
    (clip,) = await asyncio.to_thread(speak, ["what is the capital of france"], "piper", "joe")
    utterance = segment(board_chunks(clip.pcm), vad)
    assert utterance is not None
    heard = await asyncio.to_thread(hear, twopass, utterance, dialogue.phrases(tools))
    assert heard.path == "whisper" and heard.transcript is not None  # not forced onto a command
    assert not dialogue.understands(heard.transcript.text, tools)

    llm_dialogue = OpenAIDialogue(DialogueSettings(openai=OpenAISettings(base_url=url)))
    context = DialogueContext(tools=tools, language=heard.transcript.language or "en")
    events = [e async for e in llm_dialogue.respond(heard.transcript.text, context)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."
    said = fake.bodies[-1]["messages"][-1]
    assert said["role"] == "user"
    words = said["content"].lower()
    assert all(w in words for w in ("capital", "france")), said
