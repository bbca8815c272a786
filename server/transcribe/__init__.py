"""Realtime transcription beside the assistant, on the same WebSocket port and pipeline.

Three wire protocols, one pipeline (:class:`~server.pipeline.speech_in.SpeechIn` fed PCM, the
server's shared VAD/ASR providers, pools and executor):

* ``/`` — sherpa-onnx streaming clients (:mod:`.sherpa_endpoint`),
* ``/ws/asr`` — the sequenced packet protocol with JWT and resume (:mod:`.sequenced_endpoint`),
* ``/ws/record`` — chunked recording upload (:mod:`.upload_endpoint`).

:mod:`.service` builds them from the server's shared dependencies and routes handshakes.
"""
