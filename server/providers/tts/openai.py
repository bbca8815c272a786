"""Any OpenAI-compatible ``/audio/speech`` endpoint (OpenAI, Kokoro-FastAPI, LocalAI, speaches …).

Registry name ``openai``. One POST per sentence (``model``, ``input``, ``voice``,
``response_format``, ``speed``); the body is decoded while it streams
(:mod:`~server.providers.tts.audio_stream`: pcm, wav, mp3, opus) and re-framed into whole
60 ms pieces, so :meth:`OpenAITts.synthesize_stream` yields the first audio as soon as the
endpoint sends it. :meth:`OpenAITts.synthesize` returns the whole sentence.

Failures raise :class:`ProviderError`: ``tts-unreachable`` / ``tts-timeout`` (retryable: retried
``retries`` times before any audio came), ``tts-engine-failed`` for an HTTP error (retried only
for 429/5xx), ``tts-bad-output`` for a body that does not decode, ``tts-empty-output`` for none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from server.config import OpenAITtsSettings, TtsSettings
from server.errors import ErrorCode, ProviderError
from server.providers.base import SpeechAudio, TtsCapabilities
from server.providers.openai_http import auth_headers, client_timeout, status_error, transport_error
from server.providers.retry import with_retries
from server.providers.tts.audio_stream import Reframer, decoder_for
from server.providers.tts.process import check_text

READ_BYTES = 16 * 1024


class OpenAITts:
    """Streams speech from an OpenAI-compatible endpoint; shared by all sessions."""

    name = "openai"

    def __init__(self, settings: TtsSettings | None = None) -> None:
        tts = settings or TtsSettings()
        self.settings: OpenAITtsSettings = tts.openai
        self.url = self.settings.base_url.rstrip("/") + "/audio/speech"
        speed = self.settings.speed if self.settings.speed is not None else tts.speed
        self.speed = None if speed == 1.0 else speed
        native = self.settings.pcm_sample_rate_hz if self.settings.format == "pcm" else 24000
        self.capabilities = TtsCapabilities(
            languages=frozenset(self.settings.languages), sample_rate_hz=native, streaming=True
        )
        self._http: Any = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def _session(self) -> Any:
        """One keep-alive session per event loop (tests may run several loops)."""
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._http is None or self._http.closed or self._http_loop is not loop:
            self._http = aiohttp.ClientSession(headers=auth_headers(self.settings.api_key))
            self._http_loop = loop
        return self._http

    def _body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "input": text,
            "voice": self.settings.voice,
            "response_format": self.settings.format,
        }
        if self.speed is not None:
            body["speed"] = self.speed
        return body

    async def _open(self, text: str) -> Any:
        """POST and return the response once its status is OK (the body is still streaming)."""
        import aiohttp

        s = self.settings
        try:
            resp = await asyncio.wait_for(
                self._session().post(
                    self.url,
                    json=self._body(text),
                    timeout=client_timeout(s.timeout_s, s.connect_timeout_s),
                ),
                s.first_audio_timeout_s,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(
                self.url, exc, unreachable=ErrorCode.TTS_UNREACHABLE, timeout=ErrorCode.TTS_TIMEOUT
            ) from exc
        if resp.status >= 400:
            try:
                body = await resp.text()
            except (aiohttp.ClientError, TimeoutError, OSError, UnicodeDecodeError):
                body = ""
            finally:
                resp.release()
            raise status_error(self.url, resp.status, body, code=ErrorCode.TTS_FAILED)
        return resp

    async def synthesize_stream(
        self, text: str, *, language: str | None = None
    ) -> AsyncIterator[SpeechAudio]:
        """Speech for one sentence, in whole 60 ms pieces as the body arrives (see base)."""
        import aiohttp

        clean = check_text(text)
        s = self.settings
        resp = await with_retries(
            lambda: self._open(clean), attempts=s.retries + 1, what="TTS request"
        )
        decoder = decoder_for(s.format, s.pcm_sample_rate_hz)
        frames = Reframer(60)
        started = time.monotonic()
        sent = False
        try:
            async with resp:
                while True:
                    limit = s.timeout_s if sent else s.first_audio_timeout_s
                    remaining = started + limit - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    data = await asyncio.wait_for(resp.content.read(READ_BYTES), remaining)
                    pcm = decoder.feed(data) if data else decoder.flush()
                    piece = frames.push(pcm, decoder.sample_rate_hz)
                    if piece is not None:
                        sent = True
                        yield SpeechAudio(pcm=piece, sample_rate_hz=decoder.sample_rate_hz)
                    if not data:
                        break
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(
                self.url, exc, unreachable=ErrorCode.TTS_UNREACHABLE, timeout=ErrorCode.TTS_TIMEOUT
            ) from exc
        rest = frames.rest()
        if rest is not None:
            sent = True
            yield SpeechAudio(pcm=rest, sample_rate_hz=decoder.sample_rate_hz)
        if not sent:
            raise ProviderError(f"{self.url} sent no audio", code=ErrorCode.TTS_EMPTY_OUTPUT)

    async def synthesize(self, text: str, *, language: str | None = None) -> SpeechAudio:
        """The whole sentence at the endpoint's rate."""
        pieces = [p async for p in self.synthesize_stream(text, language=language)]
        pcm = np.concatenate([p.pcm for p in pieces])
        return SpeechAudio(pcm=pcm, sample_rate_hz=pieces[0].sample_rate_hz)

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()
