"""No token reaches a log line (the record factory masks them whatever the logger)."""

from __future__ import annotations

import logging

import pytest

from server.security import redact
from server.security.auth import DeviceTokens

TOKEN = DeviceTokens(b"s" * 64, 3600).issue("a0:b7:65:12:34:56")


@pytest.mark.parametrize(
    "line",
    [
        f"headers: {{'Authorization': 'Bearer {TOKEN}'}}",
        f"Authorization: Bearer {TOKEN}",
        "Authorization: Bearer static-secret-123",
        "connect ws://h/xiaozhi/v1/?token=static-secret-123&device-id=x",
        '{"websocket": {"url": "ws://h", "token": "static-secret-123"}}',
        f"decoded {TOKEN} badly",
    ],
)
def test_tokens_are_masked(line: str) -> None:
    cleaned = redact.redact(line)
    assert TOKEN not in cleaned and "static-secret-123" not in cleaned and "eyJ" not in cleaned
    assert redact.MASK in cleaned


def test_ordinary_lines_are_untouched() -> None:
    line = "refusing connection from 10.0.0.1: bad or missing token; 3 tokens configured"
    assert redact.redact(line) == line


def test_installed_factory_masks_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    redact.install()
    redact.install()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("any.module").info("got %s from %s", f"Bearer {TOKEN}", "10.0.0.1")
        try:
            raise ValueError(f"bad token {TOKEN}")
        except ValueError:
            logging.getLogger("other").exception("failed")
    assert "10.0.0.1" in caplog.text
    assert TOKEN not in caplog.text and "eyJ" not in caplog.text
