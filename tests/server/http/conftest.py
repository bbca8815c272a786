from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from server.config import OtaSettings, Settings
from server.devices import DeviceRegistry
from server.http import HttpSide, start_http
from server.metrics import ServerMetrics

WS_PORT = 8123


class Running:
    """A started HTTP side with its registry and metrics."""

    def __init__(self, http: HttpSide, registry: DeviceRegistry, metrics: ServerMetrics) -> None:
        self.http, self.registry, self.metrics = http, registry, metrics

    @property
    def port(self) -> int:
        return self.http.port


def make_settings(db_path: Path, **ota: Any) -> Settings:
    return Settings(ota=OtaSettings(host="127.0.0.1", port=0, db_path=db_path, **ota))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "devices.sqlite3"  # parent does not exist yet


@pytest.fixture
def server(db_path: Path) -> Callable[..., AbstractAsyncContextManager[Running]]:
    """``async with server(**ota_fields) as running:`` starts a fresh registry + HTTP side."""

    @asynccontextmanager
    async def start(
        health: Callable[[], dict[str, Any]] | None = None, **ota: Any
    ) -> AsyncIterator[Running]:
        settings = make_settings(db_path, **ota)
        registry = DeviceRegistry(settings.ota.db_path)
        metrics = ServerMetrics()
        http = await start_http(
            settings,
            registry,
            metrics,
            websocket_port=WS_PORT,
            health=health or (lambda: {"status": "ok"}),
        )
        try:
            yield Running(http, registry, metrics)
        finally:
            await http.close()
            await registry.close()

    return start
