"""Stored recordings: Ogg Opus (PCM streams) or the uploaded bytes as sent, with transcripts.

Layout: ``<dir>/<device>/<recording id>/`` holding ``meta.json``, the audio (``audio.opus`` or
``upload.bin``), ``transcript.jsonl`` (one final segment a line, with ms timestamps) and, for
uploads, ``chunks.log`` (the journal of appended chunks) and ``pending/`` (chunks that arrived
ahead of their turn). Everything is written incrementally and fsync'd per chunk, so a crash
loses at most the chunk being written. :mod:`.store` lists, deletes (with an audit log line)
and sweeps by retention.
"""
