"""Tokens never reach a log line: a record factory masks bearer values and JWT-looking strings.

Installed once per process by the server (:func:`install`); it rewrites the formatted message of
every record (whatever logger or handler), so neither a header dump nor an exception text can
leak a token. Masked: ``Authorization: …``/``Bearer …`` values, ``token=…``/``"token": "…"``
pairs and any three-part base64url string that starts like a JWT (``eyJ``).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

MASK: Final = "***"
_PATTERNS: Final = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+)?[^\s'\",;]+"),
    re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"),
    re.compile(r"(?i)(\btoken['\"]?\s*[:=]\s*['\"]?)[^\s'\",;&]+"),
)
_installed = False


def redact(text: str) -> str:
    """``text`` with every token-looking value replaced by ``***``."""
    if "eyJ" in text:
        text = _PATTERNS[0].sub(MASK, text)
    lowered = text.lower()
    if "authorization" in lowered or "bearer" in lowered or "token" in lowered:
        for pattern in _PATTERNS[1:]:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def install() -> None:
    """Mask tokens in every log record from now on (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if redact(str(exc)) != str(exc):
                record.exc_text = f"{type(exc).__name__}: {redact(str(exc))}"
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
