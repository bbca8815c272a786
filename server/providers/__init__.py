"""Pluggable engines (VAD, ASR, dialogue, TTS), selected by name through :mod:`.registry`."""
