"""The Wyoming listener: one asyncio TCP server, one :class:`WyomingHandler` per connection.

service = WyomingService(asr, tts, executor, settings.wyoming, phrases=...)
await service.start()      # service.port is bound (0 picks a free one)
await service.stop()       # closes the listener and every open connection
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from server.config import WyomingServiceSettings
from server.providers.base import AsrProvider, TtsProvider
from server.providers.wyoming_peer import wyoming_module
from server.wyoming.handler import WyomingHandler
from server.wyoming.info import describe

logger = logging.getLogger(__name__)


class WyomingService:
    def __init__(
        self,
        asr: AsrProvider | None,
        tts: TtsProvider | None,
        executor: Executor,
        settings: WyomingServiceSettings,
        *,
        phrases: Callable[[], list[str] | None] = lambda: None,
        voice: str | None = None,
    ) -> None:
        self._event = wyoming_module("event")  # fails early, naming the extra
        self._asr, self._tts, self._executor = asr, tts, executor
        self.settings = settings
        self._phrases = phrases
        self._info = describe(asr, tts, voice)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        port = self.settings.port or 0
        self._server = await asyncio.start_server(self._connection, self.settings.host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("Wyoming service on tcp://%s:%d", self.settings.host, self.port)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        handler = WyomingHandler(
            lambda event: self._event.async_write_event(event, writer),
            asr=self._asr,
            tts=self._tts,
            executor=self._executor,
            info=self._info,
            phrases=self._phrases,
            max_audio_s=self.settings.max_audio_s,
        )
        try:
            while (event := await self._event.async_read_event(reader)) is not None:
                if not await handler.handle(event):
                    break
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            logger.debug("Wyoming client %s went away: %s", peer, exc)
        finally:
            self._tasks.discard(task)
            await handler.close()
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await server.wait_closed()
