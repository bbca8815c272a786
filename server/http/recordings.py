"""``/recordings`` on the HTTP port: list, download and delete stored recordings.

Every request needs ``Authorization: Bearer <JWT>`` signed with ``transcribe.jwt_keys``
(401 otherwise). A caller sees and deletes its own recordings (JWT ``sub`` = the recording's
user); ``"admin": true`` in the token allows every device's.

* ``GET /recordings?device=D&user=U`` — the list (metadata and file names);
* ``GET /recordings/{id}/{file}`` — one file (``audio.opus``, ``upload.bin``,
  ``transcript.jsonl``, ``meta.json``);
* ``DELETE /recordings?device=D`` or ``?user=U`` — erase everything of that device or user
  (one audit log line); answers ``{"deleted": N}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from server.config import Settings
from server.recordings.store import RecordingInfo, RecordingStore
from server.transcribe.jwt_auth import Claims, TokenRejected, bearer, verify_hs256

FILES = frozenset({"audio.opus", "upload.bin", "transcript.jsonl", "meta.json"})


class RecordingsApi:
    def __init__(self, settings: Settings) -> None:
        self._store = RecordingStore(settings.transcribe.recordings.dir)
        self._keys = [k.get_secret_value() for k in settings.transcribe.jwt_keys]

    def _claims(self, request: web.Request) -> Claims:
        try:
            return verify_hs256(bearer(request.headers.get("Authorization", "")), self._keys)
        except TokenRejected as exc:
            raise web.HTTPUnauthorized(text=f"unauthorized: {exc.reason}\n") from None

    @staticmethod
    def _visible(claims: Claims, rec: RecordingInfo) -> bool:
        return claims.admin or rec.user == claims.sub

    async def list(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        device, user = request.query.get("device"), request.query.get("user")
        found = await asyncio.to_thread(self._store.select, device_id=device, user=user)
        items: list[dict[str, Any]] = [r.to_json() for r in found if self._visible(claims, r)]
        return web.json_response({"recordings": items})

    async def download(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(request)
        name = request.match_info["file"]
        rec = await asyncio.to_thread(self._store.find, request.match_info["id"])
        if rec is None or not self._visible(claims, rec) or name not in FILES:
            raise web.HTTPNotFound(text="no such recording file\n")
        path = rec.folder / name
        if not path.is_file():
            raise web.HTTPNotFound(text="no such recording file\n")
        return web.FileResponse(path)

    async def delete(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        device, user = request.query.get("device"), request.query.get("user")
        if (device is None) == (user is None):
            raise web.HTTPBadRequest(text="give exactly one of ?device= or ?user=\n")
        if device is not None and not claims.admin:
            found = await asyncio.to_thread(self._store.select, device_id=device)
            if any(r.user != claims.sub for r in found):
                raise web.HTTPForbidden(text="that device has other users' recordings\n")
        if user is not None and not claims.admin and user != claims.sub:
            raise web.HTTPForbidden(text="you may delete only your own recordings\n")
        by = f"{claims.sub} from {request.remote}"
        count = await asyncio.to_thread(self._store.delete, device_id=device, user=user, by=by)
        return web.json_response({"deleted": count})


def add_recording_routes(app: web.Application, settings: Settings) -> None:
    """Register the routes (when recordings are enabled)."""
    if not settings.transcribe.recordings.enabled:
        return
    api = RecordingsApi(settings)
    app.router.add_get("/recordings", api.list)
    app.router.add_delete("/recordings", api.delete)
    app.router.add_get("/recordings/{id}/{file}", api.download)
