"""One connection to a Wyoming service (the ``wyoming`` package, extra ``[wyoming]``), for the
``wyoming`` ASR and TTS providers.

Wyoming is one TCP connection per request: a JSON header line, optional JSON data and binary
payload per event (``transcribe`` + ``audio-start``/``audio-chunk``/``audio-stop`` →
``transcript``; ``synthesize`` → ``audio-start``/``audio-chunk``/``audio-stop``). Connect
failures and timeouts become retryable :class:`ProviderError` s; an ``error`` event, a closed
connection or an unexpected event do not (the service answered, a retry would not help).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import ModuleType
from typing import Any

from server.errors import ProviderError, ProviderUnavailable

INSTALL_HINT = "pip install 'xiaozhi-py[wyoming]'"


def wyoming_module(name: str = "event") -> ModuleType:
    """``wyoming.<name>``, or :class:`ProviderUnavailable` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(f"wyoming.{name}")
    except ImportError as exc:
        raise ProviderUnavailable(f"the wyoming package is not installed: {INSTALL_HINT}") from exc


class WyomingPeer:
    """An open connection; ``async with WyomingPeer.open(...)`` closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str):
        self._reader, self._writer, self.where = reader, writer, where
        self._event = wyoming_module("event")

    @classmethod
    async def open(
        cls, host: str, port: int, *, timeout_s: float, unreachable: str, timeout_code: str
    ) -> WyomingPeer:
        where = f"tcp://{host}:{port}"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        except TimeoutError as exc:
            raise ProviderError(
                f"Wyoming service {where} did not accept within {timeout_s:g} s",
                code=timeout_code,
                retryable=True,
            ) from exc
        except OSError as exc:
            raise ProviderError(
                f"cannot reach the Wyoming service {where} ({exc.strerror or exc})",
                code=unreachable,
                retryable=True,
            ) from exc
        return cls(reader, writer, where)

    async def send(self, eventable: Any) -> None:
        """Write one ``wyoming`` message object (``Transcribe(...)``, ``AudioChunk(...)``)."""
        await self._event.async_write_event(eventable.event(), self._writer)

    async def receive(self, timeout_s: float, *, code: str, timeout_code: str) -> Any:
        """The next event (``wyoming.event.Event``); raises on timeout, close or garbage."""
        try:
            event = await asyncio.wait_for(self._event.async_read_event(self._reader), timeout_s)
        except TimeoutError as exc:
            raise ProviderError(
                f"Wyoming service {self.where} sent nothing for {timeout_s:g} s",
                code=timeout_code,
                retryable=True,
            ) from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ProviderError(
                f"Wyoming service {self.where} dropped the connection ({exc})", code=code
            ) from exc
        if event is None:
            raise ProviderError(f"Wyoming service {self.where} closed the connection", code=code)
        error = wyoming_module("error").Error
        if error.is_type(event.type):
            message = error.from_event(event)
            raise ProviderError(
                f"Wyoming service {self.where}: {message.text} ({message.code or 'no code'})",
                code=code,
            )
        return event

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()


async def describe(host: str, port: int, timeout_s: float = 3.0) -> Any:
    """Ask a service what it offers: its ``wyoming.info.Info``."""
    info = wyoming_module("info")
    peer = await WyomingPeer.open(
        host, port, timeout_s=timeout_s, unreachable="provider-error", timeout_code="provider-error"
    )
    try:
        await peer.send(info.Describe())
        while True:
            event = await peer.receive(
                timeout_s, code="provider-error", timeout_code="provider-error"
            )
            if info.Info.is_type(event.type):
                return info.Info.from_event(event)
    finally:
        await peer.close()
