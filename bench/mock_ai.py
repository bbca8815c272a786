r"""xiaozhi-bench mock-ai: a local OpenAI-compatible AI service with fixed, configurable latency.

For cost-free full-chain load tests of any server that can use OpenAI-compatible providers:

* ``POST /v1/chat/completions``: a scripted answer, streamed (SSE) word by word after
  ``--llm-ms``; when the request offers tools and the user's words name one (``turn on the
  lamp`` → ``self.lamp.turn_on``), the first round streams that tool call and the round after
  the tool result answers ``Done.``. ``"stream": false`` gets one JSON answer.
* ``POST /v1/audio/transcriptions``: after ``--asr-ms``, a scripted text chosen by the length of
  the uploaded audio (``--transcript MAX_S=TEXT``; the first whose MAX_S covers the length).
* ``POST /v1/audio/speech``: real speech (flite, through the server's own flite provider, cached
  per text), first bytes after ``--tts-ms``, the rest streamed at ``--tts-speed`` × real time,
  in pcm (24 kHz), wav, opus (Ogg) or mp3 (needs PyAV).
* ``GET /v1/models``; every answer has the header ``X-Mock-Latency-Ms`` (the delay it used).

Each delay is its value ± a uniform jitter (``--asr-jitter-ms`` …), never below 0.

examples:
  xiaozhi-bench mock-ai --port 9100 --asr-ms 200 --llm-ms 300 --tts-ms 150
  XIAOZHI_ASR__PROVIDER=openai XIAOZHI_ASR__OPENAI__BASE_URL=http://127.0.0.1:9100/v1 \
  XIAOZHI_TTS__PROVIDER=openai XIAOZHI_TTS__OPENAI__BASE_URL=http://127.0.0.1:9100/v1 \
  XIAOZHI_DIALOGUE__PROVIDER=openai XIAOZHI_DIALOGUE__OPENAI__BASE_URL=http://127.0.0.1:9100/v1 \
  xiaozhi-server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bench.mock_ai_audio import FORMATS, speech_pieces, upload_seconds
from protocol.audio import Pcm, resample

DEFAULT_TRANSCRIPTS: tuple[tuple[float, str], ...] = (
    (1.3, "turn on the lamp"),
    (2.2, "what time is it"),
    (math.inf, "tell me something about the weather"),
)
DEFAULT_ANSWER = "Here is the mock answer. It has two sentences, so the first can play early."
PCM_RATE_HZ = 24000
"""OpenAI's ``pcm`` format: 24 kHz 16-bit mono."""


@dataclass(frozen=True)
class Delay:
    """A latency in ms with a uniform jitter (± ``jitter_ms``)."""

    ms: float = 0.0
    jitter_ms: float = 0.0

    def draw(self, rng: random.Random) -> float:
        return max(0.0, self.ms + rng.uniform(-self.jitter_ms, self.jitter_ms))


@dataclass(frozen=True)
class MockAiConfig:
    """What the mock answers and how slowly (ms)."""

    asr: Delay = Delay(200.0)
    """Request → transcript."""
    llm: Delay = Delay(300.0)
    """Request → first token (or tool call)."""
    tts: Delay = Delay(150.0)
    """Request → first audio bytes."""
    token_interval_ms: float = 15.0
    """Between streamed words."""
    tts_speed: float = 4.0
    """Speech body streamed at this many times real time after the first bytes."""
    transcripts: tuple[tuple[float, str], ...] = DEFAULT_TRANSCRIPTS
    answer: str = DEFAULT_ANSWER
    seed: int = 1


@dataclass
class MockAiStats:
    """Requests served per endpoint (for tests and the end-of-run line)."""

    chat: int = 0
    tool_calls: int = 0
    transcriptions: int = 0
    speech: int = 0
    uploads_s: list[float] = field(default_factory=list)
    """Length of each uploaded audio file (s)."""
    speech_formats: list[str] = field(default_factory=list)


def pick_transcript(seconds: float, script: Sequence[tuple[float, str]]) -> str:
    """The text of the first ``(max_s, text)`` whose ``max_s`` covers ``seconds``."""
    for max_s, text in script:
        if seconds <= max_s:
            return text
    return script[-1][1] if script else ""


_WORD = re.compile(r"[a-z0-9]+")


def pick_tool(utterance: str, tools: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The offered tool whose name shares the most words with the utterance (at least two)."""
    words = set(_WORD.findall(utterance.lower()))
    best, best_score = None, 1
    for tool in tools:
        function = tool.get("function") or {}
        name = str(function.get("name", ""))
        score = len(words & set(_WORD.findall(name.lower().replace("_", " "))))
        if score > best_score:
            best, best_score = function, score
    return best


def tool_arguments(function: dict[str, Any], utterance: str) -> dict[str, Any]:
    """Values for the required parameters: a number said in the utterance, else a default."""
    params = function.get("parameters") or {}
    props = params.get("properties") or {}
    numbers = [int(n) for n in re.findall(r"\d+", utterance)]
    args: dict[str, Any] = {}
    for name in params.get("required") or []:
        spec = props.get(name) or {}
        kind = spec.get("type")
        if spec.get("enum"):
            args[name] = spec["enum"][0]
        elif kind in ("integer", "number"):
            args[name] = numbers[0] if numbers else 50
        elif kind == "boolean":
            args[name] = True
        else:
            args[name] = ""
    return args


class MockAi:
    """The aiohttp application and its state; ``await start(host, port)`` / ``await stop()``."""

    def __init__(self, config: MockAiConfig | None = None) -> None:
        self.config = config or MockAiConfig()
        self.stats = MockAiStats()
        self._rng = random.Random(self.config.seed)
        self._voice: Any = None
        self._cache: OrderedDict[str, Pcm] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # ------------------------------------------------------------------ helpers

    async def _wait(self, delay: Delay, since: float) -> float:
        """Sleep until ``delay`` after ``since`` (monotonic s); returns the drawn delay (ms)."""
        ms = delay.draw(self._rng)
        remaining = since + ms / 1000 - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        return ms

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request"}}, status=status
        )

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "mock", "object": "model"}]})

    # ------------------------------------------------------------------ chat

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        since = time.monotonic()
        try:
            body = await request.json()
            messages = list(body["messages"])
        except (ValueError, KeyError, TypeError):
            return self._error(400, "body must be JSON with 'messages'")
        self.stats.chat += 1
        last: dict[str, Any] = messages[-1] if messages else {}
        user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        utterance = str(user.get("content") or "")
        call = None
        if last.get("role") == "tool":
            text = "Done."
        else:
            function = pick_tool(utterance, body.get("tools") or [])
            text = self.config.answer
            if function is not None:
                self.stats.tool_calls += 1
                call = {
                    "name": function["name"],
                    "arguments": json.dumps(tool_arguments(function, utterance)),
                }
        ms = await self._wait(self.config.llm, since)
        headers = {"X-Mock-Latency-Ms": f"{ms:.1f}"}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if call else text}
            if call:
                message["tool_calls"] = [{"id": "call_1", "type": "function", "function": call}]
            choice = {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if call else "stop",
            }
            return web.json_response(
                {"object": "chat.completion", "choices": [choice]}, headers=headers
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
        await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        if call is not None:
            await send(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ],
                }
            )
            await send(
                {"tool_calls": [{"index": 0, "function": {"arguments": call["arguments"]}}]},
                "tool_calls",
            )
        else:
            for i, word in enumerate(text.split(" ")):
                if i:
                    await asyncio.sleep(self.config.token_interval_ms / 1000)
                await send({"content": ("" if i == 0 else " ") + word})
            await send({}, "stop")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ------------------------------------------------------------------ transcriptions

    async def _transcriptions(self, request: web.Request) -> web.Response:
        since = time.monotonic()
        try:
            form = await request.post()
        except ValueError:
            return self._error(400, "expected multipart/form-data")
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return self._error(400, "missing the 'file' part")
        if not form.get("model"):
            return self._error(400, "missing 'model'")
        seconds = upload_seconds(upload.file.read())
        self.stats.transcriptions += 1
        self.stats.uploads_s.append(seconds)
        text = pick_transcript(seconds, self.config.transcripts)
        ms = await self._wait(self.config.asr, since)
        headers = {"X-Mock-Latency-Ms": f"{ms:.1f}"}
        fmt = str(form.get("response_format") or "json")
        if fmt == "text":
            return web.Response(text=text, headers=headers)
        answer: dict[str, Any] = {"text": text}
        if fmt == "verbose_json":
            answer |= {"language": str(form.get("language") or "en"), "duration": seconds}
        return web.json_response(answer, headers=headers)

    # ------------------------------------------------------------------ speech

    async def _voice_pcm(self, text: str) -> Pcm:
        """flite speech of ``text`` at 24 kHz, cached (256 texts)."""
        if text in self._cache:
            self._cache.move_to_end(text)
            return self._cache[text]
        if self._voice is None:
            from server.providers.tts.flite import FliteTts

            self._voice = FliteTts()
        audio = await self._voice.synthesize(text)
        pcm = resample(audio.pcm, audio.sample_rate_hz, PCM_RATE_HZ)
        self._cache[text] = pcm
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        return pcm

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        since = time.monotonic()
        try:
            body = await request.json()
            text = str(body["input"]).strip()
        except (ValueError, KeyError, TypeError):
            return self._error(400, "body must be JSON with 'input'")
        fmt = str(body.get("response_format") or "mp3")
        if not text:
            return self._error(400, "'input' is empty")
        if fmt not in FORMATS:
            return self._error(400, f"response_format must be one of {', '.join(FORMATS)}")
        self.stats.speech += 1
        self.stats.speech_formats.append(fmt)
        pcm = await self._voice_pcm(text)
        try:
            pieces = await asyncio.to_thread(speech_pieces, pcm, PCM_RATE_HZ, fmt)
        except ImportError:
            return self._error(400, "mp3 needs PyAV in the mock (pip install av)")
        ms = await self._wait(self.config.tts, since)
        types = {"pcm": "audio/pcm", "wav": "audio/wav", "opus": "audio/ogg", "mp3": "audio/mpeg"}
        response = web.StreamResponse(
            headers={"Content-Type": types[fmt], "X-Mock-Latency-Ms": f"{ms:.1f}"}
        )
        await response.prepare(request)
        per_piece_s = len(pcm) / PCM_RATE_HZ / max(1, len(pieces)) / self.config.tts_speed
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(per_piece_s)
            await response.write(piece)
        await response.write_eof()
        return response


# ---------------------------------------------------------------------- command line


def _transcript(value: str) -> tuple[float, str]:
    max_s, sep, text = value.partition("=")
    try:
        if not sep or not text:
            raise ValueError
        return (math.inf if max_s in ("inf", "*") else float(max_s)), text
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MAX_S=TEXT, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xiaozhi-bench mock-ai",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9100, help="port (default 9100; 0 = any free)")
    for name, default, what in (
        ("asr", 200, "transcript"),
        ("llm", 300, "first token"),
        ("tts", 150, "first audio"),
    ):
        p.add_argument(
            f"--{name}-ms",
            type=float,
            default=default,
            help=f"request → {what}, ms (default {default})",
        )
        p.add_argument(
            f"--{name}-jitter-ms",
            type=float,
            default=0.0,
            help=f"± uniform jitter of --{name}-ms (default 0)",
        )
    p.add_argument(
        "--token-interval-ms",
        type=float,
        default=15.0,
        help="between streamed words, ms (default 15)",
    )
    p.add_argument(
        "--tts-speed",
        type=float,
        default=4.0,
        help="speech streamed at this × real time after the first bytes (default 4)",
    )
    p.add_argument(
        "--transcript",
        action="append",
        type=_transcript,
        default=[],
        metavar="MAX_S=TEXT",
        help="text for audio up to MAX_S seconds (repeatable; 'inf=TEXT' for the "
        "rest); default: 1.3=turn on the lamp, 2.2=what time is it, inf=…",
    )
    p.add_argument(
        "--answer", default=DEFAULT_ANSWER, help="the chat answer (default: 2 sentences)"
    )
    p.add_argument("--seed", type=int, default=1, help="jitter seed (default 1)")
    return p


def config_from_args(args: argparse.Namespace) -> MockAiConfig:
    return MockAiConfig(
        asr=Delay(args.asr_ms, args.asr_jitter_ms),
        llm=Delay(args.llm_ms, args.llm_jitter_ms),
        tts=Delay(args.tts_ms, args.tts_jitter_ms),
        token_interval_ms=args.token_interval_ms,
        tts_speed=args.tts_speed,
        transcripts=tuple(args.transcript) or DEFAULT_TRANSCRIPTS,
        answer=args.answer,
        seed=args.seed,
    )


async def serve(config: MockAiConfig, host: str, port: int) -> None:
    mock = MockAi(config)
    await mock.start(host, port)
    print(f"mock AI service on http://{host}:{mock.port}/v1 (Ctrl-C stops)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await mock.stop()
        s = mock.stats
        print(
            f"served chat={s.chat} (tool calls {s.tool_calls}) "
            f"transcriptions={s.transcriptions} speech={s.speech}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(config_from_args(args), args.host, args.port))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(
            f"xiaozhi-bench mock-ai: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0
