"""Clients of the transcription service, one per protocol, and a CLI (``xiaozhi-transcribe``).

* :mod:`.sherpa_client` — the sherpa-onnx streaming protocol (``ws://HOST:PORT/``),
* :mod:`.sequenced_client` — ``/ws/asr`` with JWT, seq numbers, resume and resend,
* :mod:`.upload_client` — ``/ws/record`` chunked upload with reconnect and resend.

Each reconnects (1 s, doubling, at most 5 tries) where its protocol allows it.
"""
