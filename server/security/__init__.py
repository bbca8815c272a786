"""Security and robustness of the endpoints: TLS, device tokens, handshake limits, flood control.

``settings``: the ``security`` settings section. ``tls``: server/client SSL contexts and the
self-signed pair of ``xiaozhi-server cert``. ``auth``: per-device HS256 JWTs handed out by OTA and
checked at the WebSocket handshake. ``limits``: failed-auth lockout and per-IP connection counts
(pure, fed with ``now_s``). ``handshake``: the WebSocket handshake guard built from them.
``flood``: the uplink rate gate of a session. ``redact``: tokens never reach a log line.
"""
