"""The server's ASR and TTS offered as a Wyoming service (Home Assistant's Assist pipeline).

Optional (``wyoming.port`` / ``--wyoming-port``) and needs the extra ``[wyoming]``. Home
Assistant adds it under Settings → Devices & services → Wyoming Protocol (host and port); it
then appears as a speech-to-text and a text-to-speech engine. :class:`WyomingService` listens;
each connection is one :class:`~server.wyoming.handler.WyomingHandler`.
"""

from server.wyoming.service import WyomingService

__all__ = ["WyomingService"]
