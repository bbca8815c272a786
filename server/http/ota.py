"""OTA/config and activation handlers (protocol.md §2, §9 items 1–4).

The OTA endpoint answers HTTP 200 with JSON to every request, even a malformed one: any other
answer makes the board back off (10, 20, 40 … s) and boot without configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from server.config import Settings
from server.devices import DeviceRecord, DeviceRegistry
from server.metrics import ServerMetrics
from server.security.auth import DeviceTokens

logger = logging.getLogger(__name__)

ACTIVATION_TIMEOUT_MS = 30_000
"""``activation.timeout_ms`` (parsed but unused by the firmware)."""

_HOSTNAME = re.compile(r"^[A-Za-z0-9.\-]{1,253}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def local_timezone_offset_min() -> int:
    """The server's current UTC offset in minutes (e.g. 480 for UTC+8)."""
    offset = datetime.now().astimezone().utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def request_hostname(request: web.Request) -> str:
    """Hostname the client used (``Host`` header without port), else the local socket address."""
    host = request.headers.get("Host", "").strip()
    if host.startswith("["):  # [v6]:port
        inner = host[1 : host.find("]")] if "]" in host else ""
        if inner and all(c in "0123456789abcdefABCDEF:." for c in inner):
            return f"[{inner}]"
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if _HOSTNAME.match(name):
            return name
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if sockname:
        addr = str(sockname[0])
        return f"[{addr}]" if ":" in addr else addr
    return "127.0.0.1"


def websocket_url(settings: Settings, request: web.Request, websocket_port: int) -> str:
    """URL handed to boards: the configured one, else built from the request's Host."""
    if settings.ota.websocket_url:
        return settings.ota.websocket_url
    scheme = "wss" if settings.security.tls.enabled else "ws"
    return f"{scheme}://{request_hostname(request)}:{websocket_port}{settings.websocket.path}"


def websocket_token(settings: Settings) -> str:
    """Token handed to boards: ``ota.websocket_token``, else the first accepted WebSocket token.

    Always sent (possibly empty): the board keeps omitted keys in NVS, so an empty string clears
    a token left over from another server, and the firmware sends no ``Authorization`` then.
    """
    if settings.ota.websocket_token:
        return settings.ota.websocket_token
    tokens = settings.websocket.tokens
    return tokens[0].get_secret_value() if tokens else ""


async def _read_json_body(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The body as a JSON object, or ``({}, problem)`` when it is missing or malformed."""
    try:
        raw = await request.read()
    except web.HTTPException as exc:
        return {}, f"unreadable body: {exc.reason}"
    if not raw.strip():
        return {}, None if request.method == "GET" else "empty body"
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # "[[[[…": too deep
        return {}, f"body is not JSON ({exc}): {raw[:120]!r}"
    if not isinstance(body, dict):
        return {}, f"body is JSON but not an object: {raw[:120]!r}"
    return body, None


def _field(obj: Any, *keys: str) -> str | None:
    """``obj[k1][k2]…`` as a string when it is a non-empty string or number, else None."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    if isinstance(obj, bool) or not isinstance(obj, str | int | float):
        return None
    text = str(obj).strip()
    return text or None


def device_fields(request: web.Request, body: dict[str, Any]) -> dict[str, str | None]:
    """Device id, client id, board, firmware and serial from headers, falling back to the body."""
    agent = request.headers.get("User-Agent", "")
    agent_board, _, agent_version = agent.partition("/")
    return {
        "device_id": request.headers.get("Device-Id") or _field(body, "mac_address"),
        "client_id": request.headers.get("Client-Id") or _field(body, "uuid"),
        "board": _field(body, "board", "name") or agent_board.strip() or None,
        "firmware": _field(body, "application", "version") or agent_version.strip() or None,
        "serial": request.headers.get("Serial-Number") or None,
    }


MqttOffer = Callable[[str, str, str | None], dict[str, Any] | None]
"""``(host the board used, device id, client uuid)`` → the OTA ``mqtt`` section, or None."""


class OtaHandlers:
    """aiohttp handlers for ``<ota path>`` and ``<ota path>activate``."""

    def __init__(
        self,
        settings: Settings,
        registry: DeviceRegistry,
        metrics: ServerMetrics,
        websocket_port: int,
        mqtt_offer: MqttOffer | None = None,
        device_tokens: DeviceTokens | None = None,
    ) -> None:
        self.mqtt_offer = mqtt_offer
        self.device_tokens = device_tokens
        """Per-device JWTs (security.auth.device_tokens): bound boards get their own token."""
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.websocket_port = websocket_port
        self.hmac_keys = parse_hmac_keys(settings.ota.hmac_keys)

    async def ota(self, request: web.Request) -> web.Response:
        """Config for the board; always 200 JSON (§9.1)."""
        ota = self.settings.ota
        body, problem = await _read_json_body(request)
        if problem:
            self.metrics.error("ota_bad_body")
            logger.warning(
                "OTA %s from %s: %s (answering anyway)", request.method, request.remote, problem
            )
        fields = device_fields(request, body)
        offset = ota.timezone_offset_min
        answer: dict[str, Any] = {
            "server_time": {
                "timestamp": int(time.time() * 1000),
                "timezone_offset": offset if offset is not None else local_timezone_offset_min(),
            }
        }
        if ota.firmware_version is not None:
            answer["firmware"] = {"version": ota.firmware_version, "url": ota.firmware_url}
        answer["websocket"] = {
            "url": websocket_url(self.settings, request, self.websocket_port),
            "token": websocket_token(self.settings) if self.device_tokens is None else "",
            "version": ota.websocket_version,
        }
        device_id = fields["device_id"]
        if device_id and self.mqtt_offer is not None:  # MQTT + UDP boards (protocol.md §4)
            mqtt = self.mqtt_offer(request_hostname(request), device_id, fields["client_id"])
            if mqtt is not None:
                answer["mqtt"] = mqtt
        if not device_id:
            answer["error"] = "no Device-Id header: device not recorded, activation skipped"
            return web.json_response(answer)
        try:
            record = await self.registry.seen(
                device_id,
                fields["client_id"],
                fields["board"],
                fields["firmware"],
                fields["serial"],
            )
            if self.device_tokens is not None and (record.bound or not ota.activation):
                answer["websocket"]["token"] = self.device_tokens.issue(record.device_id)
            if ota.activation and not record.bound:
                code, challenge = await self.registry.issue_activation(device_id)
                answer["activation"] = {
                    "code": code,
                    "message": self._activation_message(code),
                    "challenge": challenge,
                    "timeout_ms": ACTIVATION_TIMEOUT_MS,
                }
        except Exception:  # the board must still get its config
            self.metrics.error("device_registry")
            logger.exception(
                "device registry failed for %s; answering without activation", device_id
            )
        logger.info(
            "OTA %s device=%s board=%s firmware=%s activation=%s",
            request.method,
            device_id,
            fields["board"],
            fields["firmware"],
            "activation" in answer,
        )
        return web.json_response(answer)

    def _activation_message(self, code: str) -> str:
        if self.settings.ota.auto_bind:
            return f"Activating {code}"
        return f"Bind: xiaozhi-server devices bind {code}"

    async def activate(self, request: web.Request) -> web.Response:
        """200 bound, 202 pending, 401 bad HMAC, 404 unknown device, 400 malformed (§2.4)."""
        body, problem = await _read_json_body(request)
        if problem and problem != "empty body":
            return _error(400, problem)
        fields = device_fields(request, body)
        device_id = fields["device_id"]
        if not device_id:
            return _error(400, "missing Device-Id header")
        record = await self.registry.get(device_id)
        if record is None:
            return _error(404, f"unknown device {device_id}: POST the OTA URL first")
        if record.bound or not self.settings.ota.activation:
            return web.json_response({"status": "bound", "device_id": record.device_id})
        if "hmac" in body:
            verdict = self._check_hmac(record, body)
            if verdict is not None:
                logger.warning("activation of %s refused: %s", record.device_id, verdict)
                self.metrics.error("activation_hmac")
                return _error(401, verdict)
            if str(body.get("serial_number")) in self.hmac_keys:
                return await self._bind(record, "verified HMAC")
        if self.settings.ota.auto_bind:
            return await self._bind(record, "auto-bind")
        return web.json_response(
            {"status": "pending", "message": "waiting for `xiaozhi-server devices bind <code>`"},
            status=202,
        )

    async def _bind(self, record: DeviceRecord, why: str) -> web.Response:
        bound = await self.registry.bind_device(record.device_id)
        logger.info("device %s bound (%s)", record.device_id, why)
        device_id = bound.device_id if bound else record.device_id
        return web.json_response({"status": "bound", "device_id": device_id})

    def _check_hmac(self, record: DeviceRecord, body: dict[str, Any]) -> str | None:
        """None when the HMAC is valid or no key is configured for the serial; else the reason."""
        serial = body.get("serial_number")
        if not isinstance(serial, str) or not serial:
            return "serial_number missing"
        key = self.hmac_keys.get(serial)
        if key is None:
            logger.info("no HMAC key for serial %s: falling back to code binding", serial)
            return None
        if body.get("algorithm") != "hmac-sha256":
            return f"unsupported algorithm {body.get('algorithm')!r}"
        if record.serial and record.serial != serial:
            return "serial_number does not match the Serial-Number seen by the OTA endpoint"
        challenge, given = body.get("challenge"), body.get("hmac")
        if not isinstance(challenge, str) or challenge != record.challenge:
            return "challenge does not match the one issued"
        if not isinstance(given, str) or not _HEX64.match(given):
            return "hmac must be 64 hex characters"
        expected = hmac.new(key, challenge.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given.lower()):
            return "hmac does not match"
        return None


def parse_hmac_keys(keys: dict[str, str]) -> dict[str, bytes]:
    """Decode ``ota.hmac_keys``; raises ``ValueError`` naming the serial of a non-hex key."""
    decoded: dict[str, bytes] = {}
    for serial, key in keys.items():
        try:
            decoded[serial] = bytes.fromhex(key)
        except ValueError:
            raise ValueError(f"ota.hmac_keys[{serial!r}] is not a hex string") from None
        if not decoded[serial]:
            raise ValueError(f"ota.hmac_keys[{serial!r}] is empty")
    return decoded


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
