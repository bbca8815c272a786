"""Text-to-speech providers: flite, espeak-ng, edge-tts (online, local fallback), sherpa-onnx."""
