"""One way to ask any TTS provider for a sentence piece by piece.

A :class:`~server.providers.base.StreamingTtsProvider` (``capabilities.streaming``: the
``openai`` and ``wyoming`` voices) yields its audio as it arrives, in whole 60 ms pieces; any
other provider yields its whole sentence once. Callers (the reply's synthesis stage, the
Wyoming service) then handle both the same way and play the first piece early when they can.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.providers.base import SpeechAudio, TtsProvider


async def synthesize_pieces(
    tts: TtsProvider, text: str, *, language: str | None = None
) -> AsyncIterator[SpeechAudio]:
    """The speech of ``text`` in order; raises :class:`ProviderError` like the provider."""
    stream = getattr(tts, "synthesize_stream", None)
    if stream is not None and getattr(getattr(tts, "capabilities", None), "streaming", False):
        async for piece in stream(text, language=language):
            yield piece
    else:
        yield await tts.synthesize(text, language=language)
