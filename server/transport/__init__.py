"""Socket shells: the WebSocket endpoint (the HTTP side lives in :mod:`server.http`)."""
