"""What a board sends to open a WebSocket session, as pure functions (protocol.md §3.1, §3.3).

* :func:`upgrade_headers`: the firmware's custom upgrade headers (``Authorization`` only with a
  token, ``Bearer`` prefixed unless the token already holds a space).
* :func:`upgrade_request`: the exact request bytes (``Host`` without a port, then every header
  sorted alphabetically, as the firmware's ``std::map`` writes them).
* :func:`hello_features` / :func:`device_hello`: the hello of a given firmware version. What a
  build announces follows its version (§0): ``features.mcp`` from v1.6.6 on (and never on a
  legacy-IoT build, which exists only up to v1.7.x), ``features.glyph_push`` always present from
  v2.4.0 on and absent before, ``text_font`` only when ``glyph_push`` is true.

Nothing here does I/O. A version string that is not dotted integers raises
:class:`~protocol.errors.InvalidField`.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from protocol.audio import AudioParams
from protocol.errors import InvalidField
from protocol.messages import DeviceHello, Features, TextFont

MCP_SINCE: Final = (1, 6, 6)
"""First firmware with the MCP server (``features.mcp``) and stored ``session_id``."""
BINARY_V2_SINCE: Final = (1, 6, 2)
"""First firmware with binary protocol versions 2 and 3 (and a server-chosen version)."""
LEGACY_IOT_UNTIL: Final = (1, 7, 99)
"""Legacy IoT builds exist up to v1.7.x (deleted in v1.8.0)."""
GLYPH_PUSH_SINCE: Final = (2, 4, 0)
"""First firmware whose hello carries ``features.glyph_push`` (true or false)."""
DEFAULT_TEXT_FONT: Final = TextFont(bundle="noto-v1", charset="common", size=20, bpp=4)


def parse_version(version: str) -> tuple[int, ...]:
    """``"2.4.2"`` → ``(2, 4, 2)``; InvalidField for anything but dotted integers."""
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError:
        parts = ()
    if not parts or any(p < 0 for p in parts):
        raise InvalidField(f"firmware version {version!r} is not dotted integers like 2.4.2")
    return parts


def authorization_value(token: str) -> str:
    """The ``Authorization`` header value the firmware builds from its NVS token."""
    return token if " " in token else f"Bearer {token}"


def upgrade_headers(
    *, device_id: str, client_id: str, protocol_version: int, token: str | None = None
) -> dict[str, str]:
    """The custom upgrade headers (the request adds Host, Connection, Sec-WebSocket-*, Upgrade)."""
    headers = {
        "Client-Id": client_id,
        "Device-Id": device_id,
        "Protocol-Version": str(protocol_version),
    }
    if token:
        headers["Authorization"] = authorization_value(token)
    return headers


def upgrade_request(url: str, headers: dict[str, str], key: str) -> bytes:
    """The upgrade request bytes as the board writes them (``key``: Sec-WebSocket-Key)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fields = dict(headers)
    fields.update(
        {
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            "Upgrade": "websocket",
        }
    )
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.hostname}"]
    lines += [f"{k}: {v}" for k, v in sorted(fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def hello_features(
    firmware_version: str,
    *,
    legacy_iot: bool = False,
    glyph_push: bool = False,
    server_aec: bool = False,
) -> Features:
    """``features`` of the hello a build of ``firmware_version`` sends.

    ``legacy_iot``: a build with the legacy IoT option (≤ v1.7.x): no ``mcp``. ``glyph_push``:
    the dynamic glyph extension is on (only v2.4.x+ can say so). InvalidField when the flags do
    not exist in that version.
    """
    version = parse_version(firmware_version)
    if legacy_iot and version > LEGACY_IOT_UNTIL:
        raise InvalidField(
            f"legacy IoT builds end with v1.7.x; firmware {firmware_version} has MCP only"
        )
    has_glyph_field = version >= GLYPH_PUSH_SINCE
    if glyph_push and not has_glyph_field:
        raise InvalidField(f"glyph push exists from v2.4.0; firmware {firmware_version} lacks it")
    return Features(
        aec=True if server_aec else None,
        mcp=True if version >= MCP_SINCE and not legacy_iot else None,
        glyph_push=glyph_push if has_glyph_field else None,
    )


def device_hello(
    firmware_version: str,
    protocol_version: int,
    *,
    legacy_iot: bool = False,
    glyph_push: bool = False,
    server_aec: bool = False,
) -> DeviceHello:
    """The hello of §3.3 for this build (encode with ``encode_message`` for the exact string)."""
    features = hello_features(
        firmware_version, legacy_iot=legacy_iot, glyph_push=glyph_push, server_aec=server_aec
    )
    return DeviceHello(
        version=protocol_version,
        features=features,
        text_font=DEFAULT_TEXT_FONT if features.glyph_push else None,
        audio_params=AudioParams(),
    )
