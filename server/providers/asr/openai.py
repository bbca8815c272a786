"""Any OpenAI-compatible ``/audio/transcriptions`` endpoint (OpenAI, Groq, LocalAI, speaches …).

Registry name ``openai``. Not streaming: ``accept`` only buffers the 16 kHz PCM of the
endpointed utterance; ``finish`` uploads it as one 16-bit mono WAV (multipart ``file``, with
``model``, ``language``, ``prompt``, ``response_format=json``, ``temperature=0``) and returns
the ``text`` of the answer. ``finish`` blocks its executor thread for the round trip; the
request itself runs on the provider's :class:`~server.providers.io_thread.IoThread` (one
keep-alive connection pool for all sessions).

Failures raise :class:`ProviderError`: ``asr-unreachable`` / ``asr-timeout`` (retryable, retried
``retries`` times with backoff), ``asr-failed`` for an HTTP error (retried only for 429/5xx) or
an answer without text.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import wave
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from protocol.audio import Pcm
from server.config import AsrSettings, OpenAIAsrSettings
from server.errors import ErrorCode, ProviderError, ProviderUnavailable
from server.providers.base import AsrCapabilities, Transcript
from server.providers.io_thread import IoThread
from server.providers.openai_http import auth_headers, client_timeout, status_error, transport_error
from server.providers.retry import with_retries

SAMPLE_RATE_HZ: Final = 16000
MAX_AUDIO_S: Final = 60.0
"""Longer utterances are cut (the session ends them at ``vad.max_utterance_s`` anyway)."""


def upload_language(explicit: str | None, asr_language: str) -> str | None:
    """The ``language`` form field: ``explicit``, else ``asr.language``'s base (``en-US`` →
    ``en``); None for ``auto``/empty (the endpoint detects it)."""
    value = (explicit if explicit is not None else asr_language).strip()
    if value.lower() in ("", "auto"):
        return None
    return value.replace("_", "-").split("-")[0].lower()


def wav_bytes(pcm: Pcm, sample_rate_hz: int = SAMPLE_RATE_HZ) -> bytes:
    """A 16-bit mono RIFF/WAVE file of ``pcm``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate_hz)
        w.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return buf.getvalue()


class OpenAIAsrStream:
    """One utterance: PCM buffered by ``accept``, uploaded by ``finish``."""

    def __init__(self, provider: OpenAIAsr) -> None:
        self._provider = provider
        self._chunks: list[Pcm] = []
        self._samples = 0

    def accept(self, pcm: Pcm) -> Transcript | None:
        if self._samples < MAX_AUDIO_S * SAMPLE_RATE_HZ:
            self._chunks.append(np.asarray(pcm, dtype=np.int16))
            self._samples += len(pcm)
        return None  # no partials: the endpoint only sees whole utterances

    def finish(self) -> Transcript:
        chunks, self._chunks, self._samples = self._chunks, [], 0
        if not chunks:
            return Transcript("", is_final=True)
        return self._provider.transcribe(np.concatenate(chunks))

    async def finish_async(self) -> Transcript:
        """As :meth:`finish`, awaited on the caller's loop (the upload runs on the I/O thread)."""
        chunks, self._chunks, self._samples = self._chunks, [], 0
        if not chunks:
            return Transcript("", is_final=True)
        return await self._provider.transcribe_async(np.concatenate(chunks))

    def close(self) -> None:
        self._chunks, self._samples = [], 0


class OpenAIAsr:
    """The provider; thread-safe, shared by all sessions."""

    name = "openai"
    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, settings: AsrSettings | None = None) -> None:
        settings = settings or AsrSettings()
        try:
            import aiohttp  # noqa: F401
        except ImportError as exc:  # pragma: no cover - aiohttp is a core dependency
            raise ProviderUnavailable(
                "asr.provider openai needs aiohttp: pip install aiohttp"
            ) from exc
        self.settings: OpenAIAsrSettings = settings.openai
        self.url = self.settings.base_url.rstrip("/") + "/audio/transcriptions"
        self.language = upload_language(self.settings.language, settings.language)
        self.capabilities = AsrCapabilities(
            grammar=False,
            free_text=True,
            partials=False,
            streaming=False,
            languages=frozenset(self.settings.languages),
        )
        self._io = IoThread("xiaozhi-asr-openai")
        self._http: Any = None

    def create_stream(self, phrases: Sequence[str] | None = None) -> OpenAIAsrStream:
        """A stream for one utterance (``phrases`` are ignored: the endpoint hears free text)."""
        return OpenAIAsrStream(self)

    def transcribe(self, pcm: Pcm) -> Transcript:
        """Upload ``pcm`` (16 kHz) and return the final transcript. Blocking: not on a loop."""
        s = self.settings
        budget = (s.timeout_s + 1.0) * (s.retries + 1) + 0.2 * 2**s.retries
        try:
            return self._io.run(self._transcribe_with_retries(wav_bytes(pcm)), budget)
        except TimeoutError as exc:
            raise ProviderError(
                f"{self.url} did not answer in time", code=ErrorCode.ASR_TIMEOUT, retryable=True
            ) from exc

    async def transcribe_async(self, pcm: Pcm) -> Transcript:
        """As :meth:`transcribe`, awaited from any event loop (never blocks it)."""
        s = self.settings
        budget = (s.timeout_s + 1.0) * (s.retries + 1) + 0.2 * 2**s.retries
        future = self._io.submit(self._transcribe_with_retries(wav_bytes(pcm)))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), budget)
        except TimeoutError as exc:
            raise ProviderError(
                f"{self.url} did not answer in time", code=ErrorCode.ASR_TIMEOUT, retryable=True
            ) from exc

    async def _transcribe_with_retries(self, wav: bytes) -> Transcript:
        return await with_retries(
            lambda: self._post(wav), attempts=self.settings.retries + 1, what="ASR upload"
        )

    async def _session(self) -> Any:
        import aiohttp

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(headers=auth_headers(self.settings.api_key))
        return self._http

    def _form(self, wav: bytes) -> Any:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("file", wav, filename="utterance.wav", content_type="audio/wav")
        form.add_field("model", self.settings.model)
        form.add_field("response_format", "json")
        form.add_field("temperature", "0")
        if self.language:
            form.add_field("language", self.language)
        if self.settings.prompt:
            form.add_field("prompt", self.settings.prompt)
        return form

    async def _post(self, wav: bytes) -> Transcript:
        import aiohttp

        s = self.settings
        http = await self._session()
        try:
            async with http.post(
                self.url,
                data=self._form(wav),
                timeout=client_timeout(s.timeout_s, s.connect_timeout_s),
            ) as resp:
                body = await resp.text()
                if resp.status >= 400:
                    raise status_error(self.url, resp.status, body, code=ErrorCode.ASR_FAILED)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(
                self.url, exc, unreachable=ErrorCode.ASR_UNREACHABLE, timeout=ErrorCode.ASR_TIMEOUT
            ) from exc
        return self._parse(body, resp.headers.get("Content-Type", ""))

    def _parse(self, body: str, content_type: str) -> Transcript:
        if "json" not in content_type and not body.lstrip().startswith("{"):
            return Transcript(body.strip(), is_final=True, language=self.language)  # text format
        try:
            answer = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ProviderError(
                f"{self.url} answered something that is not JSON: {body[:100]!r}",
                code=ErrorCode.ASR_FAILED,
            ) from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise ProviderError(
                f"{self.url} answered without a 'text': {body[:100]!r}", code=ErrorCode.ASR_FAILED
            )
        language = answer.get("language")
        return Transcript(
            answer["text"].strip(),
            is_final=True,
            language=language
            if isinstance(language, str) and len(language) <= 3
            else self.language,
        )

    def close(self) -> None:
        """Close the connection pool and the I/O thread."""
        if self._http is not None:
            http, self._http = self._http, None
            with contextlib.suppress(TimeoutError, RuntimeError):
                self._io.run(http.close(), 5.0)
        self._io.close()
