"""The OTA phase: POST the system info like a board, then a plain GET, then ``/activate`` when a
challenge is offered. Requests are the simulator's (:mod:`device.http`, :mod:`device.ota`,
:mod:`device.sysinfo`), so headers and body are byte-for-byte a board's."""

from __future__ import annotations

import time

from conformance.server.link import board_identity
from conformance.server.records import HttpExchange, RunRecord
from device import http
from device.ota import activation_url, request_headers
from device.sysinfo import system_info_json

HTTP_TIMEOUT_S = 30.0


async def _exchange(method: str, url: str, body: str | None) -> HttpExchange:
    ex = HttpExchange(method=method, url=url, wall_ms=time.time() * 1000.0)
    headers = request_headers(board_identity())
    if body is None:
        headers.pop("Content-Type", None)
    try:
        resp = await http.request(
            method, url, headers, (body or "").encode(), timeout_s=HTTP_TIMEOUT_S
        )
    except http.HttpError as exc:
        ex.error = str(exc)
        return ex
    ex.status = resp.status
    ex.body = resp.body.decode("utf-8", "replace")
    return ex


async def run_ota_phase(ota_url: str, run: RunRecord) -> None:
    """Fill ``run.ota_post``, ``run.ota_get`` and (with a challenge) ``run.activate``."""
    run.ota_post = await _exchange("POST", ota_url, system_info_json(board_identity()))
    run.ota_get = await _exchange("GET", ota_url, None)
    answer = run.ota_post.json
    activation = answer.get("activation") if isinstance(answer, dict) else None
    if isinstance(activation, dict) and activation.get("challenge"):
        run.activate = await _exchange("POST", activation_url(ota_url), "{}")
