"""Device audio: uplink sources (WAV, spoken text, silence, microphone), Opus pacing, and the
downlink player with the firmware's 40-packet decode queue and its sinks (speaker, WAV, null)."""
