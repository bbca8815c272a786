"""Boot-time OTA/config check and activation loop, as a board does it (protocol.md §2).

``await OtaClient(identity, store, url).run()`` POSTs the system info, applies the answer (NVS copy
of ``websocket``/``mqtt``, clock, firmware compare, activation loop) and returns an
:class:`OtaOutcome`. Delays are injectable (:class:`OtaTimings`) so tests run fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from device import http
from device.errors import OtaBadAnswer, OtaError, OtaNotFound, OtaUnreachable, OtaWrongPort
from device.identity import DeviceIdentity, IdentityStore, NvsValue
from device.sysinfo import system_info_json

logger = logging.getLogger(__name__)

Transport = Literal["websocket", "mqtt"]


@dataclass(frozen=True)
class OtaTimings:
    """Delays in seconds (firmware values by default)."""

    retry_base_s: float = 10.0
    max_failures: int = 10
    activate_pending_s: float = 3.0
    activate_other_s: float = 10.0
    activate_tries: int = 10
    http_timeout_s: float = 30.0


@dataclass
class OtaOutcome:
    """What the boot check decided."""

    transport: Transport
    config_fresh: bool
    """False when every attempt failed and the board booted with old NVS values."""
    clock_offset_ms: float | None = None
    """``server_time.timestamp + timezone_offset·60000`` minus local epoch ms at receipt."""
    upgrade_to: str | None = None
    activation_code: str | None = None
    ota_posts: int = 0
    activate_posts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


__all__ = ["OtaClient", "OtaError", "OtaOutcome", "OtaTimings", "activation_url", "version_newer"]

OTA_URL_HINT = "xiaozhi-server's OTA URL is http://HOST:8003/xiaozhi/ota/"
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")


def activation_url(ota_url: str) -> str:
    return ota_url + ("activate" if ota_url.endswith("/") else "/activate")


def version_newer(new: str, current: str) -> bool:
    """Dot-separated integer compare, longer wins on tie (raises OtaError like ``std::stoi``)."""
    try:
        a = [int(x) for x in new.split(".")]
        b = [int(x) for x in current.split(".")]
    except ValueError as exc:
        raise OtaBadAnswer(f"firmware version {new!r} is not numeric: a board would abort") from exc
    for x, y in zip(a, b, strict=False):
        if x != y:
            return x > y
    return len(a) > len(b)


def request_headers(identity: DeviceIdentity) -> dict[str, str]:
    """Custom headers of OTA and /activate requests (sorted on the wire)."""
    return {
        "Activation-Version": "1",
        "Device-Id": identity.mac,
        "Client-Id": identity.uuid,
        "User-Agent": identity.user_agent,
        "Accept-Language": identity.language,
        "Content-Type": "application/json",
    }


def _speaks_websocket(resp: http.HttpResponse) -> bool:
    """An HTTP answer from a WebSocket server (426, ``Upgrade: websocket``, its refusal text)."""
    upgrade = any(k.lower() == "upgrade" and "websocket" in v.lower() for k, v in resp.headers)
    text = resp.body[:2000].decode("utf-8", "replace").lower()
    return upgrade or "upgrade required" in text or "websocket server" in text


def copy_nvs(section: dict[str, Any], namespace: dict[str, NvsValue]) -> None:
    """Store every string/number member (bools and objects skipped; old keys survive)."""
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        namespace[key] = value


class OtaClient:
    """Runs the check/activation loop against ``ota_url``."""

    def __init__(
        self,
        identity: DeviceIdentity,
        store: IdentityStore,
        ota_url: str,
        timings: OtaTimings | None = None,
    ) -> None:
        if len(ota_url) < 10:
            raise ValueError(f"OTA URL {ota_url!r} is too short (a board treats it as unset)")
        self.identity = identity
        self.store = store
        self.url = ota_url
        self.t = timings or OtaTimings()

    async def _post(self, url: str, body: str) -> http.HttpResponse:
        return await http.request(
            "POST",
            url,
            request_headers(self.identity),
            body.encode("utf-8"),
            timeout_s=self.t.http_timeout_s,
        )

    async def check_version(self, outcome: OtaOutcome) -> dict[str, Any] | None:
        """One OTA POST; the parsed answer, None on a failure worth retrying (5xx, timeout, bad
        JSON, as a board does), or an OtaError when the URL itself is wrong (refused, 404, the
        WebSocket port): retrying cannot help, so the simulator says what to change at once."""
        outcome.ota_posts += 1
        try:
            resp = await self._post(self.url, system_info_json(self.identity))
        except http.HttpError as exc:
            if exc.refused:
                raise OtaUnreachable(
                    f"cannot reach the OTA URL {self.url}: connection refused. Is the server "
                    f"running, and is this its OTA (HTTP) port? {OTA_URL_HINT}"
                ) from exc
            if exc.empty_reply:
                raise await self._wrong_port(None) from exc
            logger.error("OTA check failed: %s", exc)
            return None
        if resp.status != 200 and (resp.status == 426 or _speaks_websocket(resp)):
            raise await self._wrong_port(resp)
        if resp.status == 404:
            raise OtaNotFound(
                f"the OTA URL {self.url} answered 404 Not Found: the port answers HTTP but the "
                f"path is wrong. {OTA_URL_HINT}"
            )
        if resp.status != 200:
            logger.error("OTA check failed: HTTP %d", resp.status)
            return None
        try:
            data = json.loads(resp.body)
        except ValueError:
            logger.error("OTA answer is not JSON")
            return None
        if not isinstance(data, dict):
            logger.error("OTA answer is not a JSON object")
            return None
        return data

    async def _wrong_port(self, resp: http.HttpResponse | None) -> OtaWrongPort:
        """The error for a WebSocket port; a plain GET may name the right OTA URL."""
        if resp is None or resp.status != 426:
            try:
                probe = await http.request("GET", self.url, {}, b"", timeout_s=5.0)
            except http.HttpError:
                probe = None
            resp = probe if probe is not None else resp
        text = resp.body.decode("utf-8", "replace") if resp is not None else ""
        named = [u for u in _URL_IN_TEXT.findall(text) if "ota" in u.lower()]
        change = f"use --ota-url {named[0]}" if named else OTA_URL_HINT
        return OtaWrongPort(
            f"{self.url} is a WebSocket port, not the OTA endpoint (it does not answer the OTA "
            f"POST): {change}; or skip OTA with --ws-url ws://HOST:8000/xiaozhi/v1/"
        )

    def apply(self, data: dict[str, Any], outcome: OtaOutcome) -> dict[str, Any]:
        """Apply one answer; returns its ``activation`` section ({} when absent)."""
        ident = self.identity
        has_ws = isinstance(data.get("websocket"), dict)
        has_mqtt = isinstance(data.get("mqtt"), dict)
        if has_mqtt:
            copy_nvs(data["mqtt"], ident.mqtt)
        if has_ws:
            copy_nvs(data["websocket"], ident.websocket)
        self.store.save(ident)
        outcome.transport = "mqtt" if has_mqtt or not has_ws else "websocket"
        st = data.get("server_time")
        if isinstance(st, dict) and isinstance(st.get("timestamp"), int | float):
            offset_min = st.get("timezone_offset", 0)
            offset_min = offset_min if isinstance(offset_min, int | float) else 0
            local_ms = st["timestamp"] + offset_min * 60_000
            outcome.clock_offset_ms = local_ms - time.time() * 1000
        fw = data.get("firmware")
        if (
            isinstance(fw, dict)
            and isinstance(fw.get("version"), str)
            and isinstance(fw.get("url"), str)
        ):
            force = fw.get("force") == 1
            if force or version_newer(fw["version"], ident.firmware_version):
                outcome.upgrade_to = fw["version"]
        act = data.get("activation")
        return act if isinstance(act, dict) else {}

    async def activate(self, challenge: str | None) -> int | None:
        """One /activate attempt: HTTP status, or None when no request was made/possible."""
        if not challenge:
            logger.warning("no activation challenge; waiting")
            return None
        try:
            resp = await self._post(activation_url(self.url), "{}")
        except http.HttpError as exc:
            logger.error("activation request failed: %s", exc)
            return None
        return resp.status

    async def run(self) -> OtaOutcome:
        """The firmware's ``CheckNewVersion`` loop."""
        outcome = OtaOutcome(transport="mqtt", config_fresh=False)
        failures, delay = 0, self.t.retry_base_s
        while True:
            data = await self.check_version(outcome)
            if data is None:
                failures += 1
                if failures >= self.t.max_failures:
                    logger.error("too many OTA failures; booting without fresh config")
                    outcome.transport = "mqtt"  # the firmware falls back to MQTT
                    return outcome
                logger.warning("retrying OTA check in %.1f s", delay)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            failures, delay = 0, self.t.retry_base_s
            outcome.config_fresh = True
            act = self.apply(data, outcome)
            if outcome.upgrade_to is not None:
                logger.warning(
                    "firmware %s offered; upgrading is not simulated, continuing boot",
                    outcome.upgrade_to,
                )
            code, challenge = act.get("code"), act.get("challenge")
            code = code if isinstance(code, str) else None
            challenge = challenge if isinstance(challenge, str) else None
            if not code and not challenge:
                return outcome
            outcome.activation_code = code
            if code:
                logger.warning("activation code %s: %s", code, act.get("message", ""))
            for _ in range(self.t.activate_tries):
                status = await self.activate(challenge)
                if status is not None:
                    outcome.activate_posts += 1
                if status == 200:
                    break
                await asyncio.sleep(
                    self.t.activate_pending_s if status == 202 else self.t.activate_other_s
                )
