"""Handshake checks and dispatch of the transcription paths on the WebSocket port.

:class:`TranscribeRoutes` is what :mod:`server.transport.websocket` calls for ``/``,
``/ws/asr`` and ``/ws/record`` (never for the assistant's path):

* ``process_request``: capacity (HTTP 503 beyond ``max_active_streams``, as sherpa-onnx), the
  JWT of ``/ws/asr`` and ``/ws/record`` (HTTP 401 with the reason; the token is never logged),
  on ``/`` one of ``websocket.tokens`` when the port has tokens (header or ``?token=``),
  recordings off (HTTP 404 on ``/ws/record``);
* ``select_subprotocol``: ``asr-protocol-v1`` on ``/ws/asr`` when offered, else none (the
  endpoint then closes 1003 "Unsupported Protocol", as the protocol asks, rather than HTTP 400);
* ``serve``: the endpoint's handler with the checked claims and query.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from server.session.connection import ChannelClosed
from server.transcribe.channel import Admission, TranscribeChannel
from server.transcribe.jwt_auth import Claims, TokenRejected, bearer, verify_hs256
from server.transcribe.sequenced_endpoint import SequencedEndpoint
from server.transcribe.sequenced_protocol import SUBPROTOCOL
from server.transcribe.sherpa_endpoint import SherpaEndpoint
from server.transcribe.streams import StreamOwner, StreamsFull
from server.transcribe.upload_endpoint import UploadEndpoint

logger = logging.getLogger(__name__)


def _normal(path: str) -> str:
    return "/" + urlsplit(path).path.strip("/")


class TranscribeRoutes:
    def __init__(
        self,
        *,
        admission: Admission,
        jwt_keys: Sequence[str],
        sherpa: SherpaEndpoint,
        sequenced: SequencedEndpoint,
        upload: UploadEndpoint | None,
        assistant_path: str,
        port_tokens: Sequence[str] = (),
    ) -> None:
        self._port_tokens = [t.encode() for t in port_tokens]
        """``websocket.tokens``: when set, the sherpa endpoint needs one too (the port is
        meant to be closed; a sherpa client can pass ``?token=``)."""
        self.admission = admission
        self._keys = list(jwt_keys)
        self.sherpa, self.sequenced, self.upload = sherpa, sequenced, upload
        paths = {"/": "sherpa", "/ws/asr": "sequenced", "/ws/record": "upload"}
        paths.pop(_normal(assistant_path), None)  # the assistant's own path wins
        self._paths = paths
        self._claims: dict[int, Claims] = {}

    def handles(self, path: str) -> bool:
        return _normal(path) in self._paths

    def select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[str]
    ) -> str | None:
        request = connection.request
        if request is not None and self._paths.get(_normal(request.path)) == "sequenced":
            return SUBPROTOCOL if SUBPROTOCOL in offered else None
        return None

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        kind = self._paths[_normal(request.path)]
        remote = _remote(connection)
        if kind == "upload" and self.upload is None:
            return connection.respond(
                HTTPStatus.NOT_FOUND, "recordings are off (transcribe.recordings.enabled)\n"
            )
        if kind != "upload" and self.admission.full:
            logger.warning(
                "refusing %s stream from %s: %d active (max)", kind, remote, self.admission.active
            )
            response = connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "The server is busy. Please retry later.\n"
            )
            response.headers["Retry-After"] = "1"
            return response
        query = _query(request.path)
        token = bearer(request.headers.get("Authorization", "") or query.get("token", ""))
        if kind == "sherpa":
            if self._port_tokens and not any(
                hmac.compare_digest(token.encode(), t) for t in self._port_tokens
            ):
                logger.info("refusing sherpa connection from %s: bad or missing token", remote)
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid token\n")
            return None
        try:
            claims = verify_hs256(token, self._keys)
        except TokenRejected as exc:
            logger.info("refusing %s connection from %s: %s", kind, remote, exc.reason)
            return connection.respond(HTTPStatus.UNAUTHORIZED, f"unauthorized: {exc.reason}\n")
        self._claims[id(connection)] = claims
        return None

    async def serve(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        kind = self._paths[_normal(request.path)]
        claims = self._claims.pop(id(ws), None)
        channel = TranscribeChannel(ws)
        query = _query(request.path)
        remote = _remote(ws)
        try:
            if kind == "sherpa":
                owner = StreamOwner(device_id=query.get("device-id", ""), remote=remote)
                await self.sherpa.serve(channel, owner)
                return
            assert claims is not None
            if kind == "sequenced":
                await self.sequenced.serve(channel, claims, query, remote)
            elif self.upload is not None:
                await self.upload.serve(channel, claims, query)
        except StreamsFull:
            await channel.close(1013, "transcription streams are all busy")
        except ChannelClosed:
            pass
        except Exception:
            logger.exception("%s connection from %s failed", kind, remote)
            await channel.close(1011, "internal error")


def _query(path: str) -> dict[str, str]:
    return {k.lower(): v[-1] for k, v in parse_qs(urlsplit(path).query).items()}


def _remote(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"
