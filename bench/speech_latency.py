"""``first_audio_ms`` of the default stack per path and per voice (issue 14's figures).

One board, real-time audio, a server subprocess per TTS engine: commands the grammar fast path
answers ("turn on the lamp", "what time is it") and questions the two-pass recogniser hands to
Whisper ("what is the capital of France", "who wrote Hamlet"; the local dialogue answers that it
cannot help). The voice is ``routing`` (Piper for English, the default) or ``flite``.
"""

from __future__ import annotations

from typing import Any

from bench.serverproc import ServerProcess
from bench.turns import mark, pct, run_devices, swarm_args

PATHS = {
    "command (grammar fast path)": ("turn on the lamp", "what time is it"),
    "question (Whisper path)": ("what is the capital of france", "who wrote hamlet"),
}
VOICES = {"routing (Piper)": "routing", "flite": "flite"}
LANGUAGE = {"routing": "auto", "flite": "en-US"}  # flite speaks English only
ROUNDS = 2
"""Rounds of the two utterances per path, voice and run (4 turns; 12 over 3 runs)."""


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 1 if quick else ROUNDS  # × 2 utterances per path
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    engines: dict[str, dict[str, str]] = {}
    for voice, provider in VOICES.items():
        env = {
            "XIAOZHI_ASR__PROVIDER": "twopass",
            "XIAOZHI_ASR__LANGUAGE": LANGUAGE[provider],
            "XIAOZHI_TTS__PROVIDER": provider,
        }
        with ServerProcess(env=env) as srv:
            engines[voice] = srv.engines()
            for path, say in PATHS.items():
                result = run_devices(srv, swarm_args(srv.ws_url, 1, rounds, 0.5, say=say), 300)
                turns = result["devices"][0]["turns"]
                first = pct([t["first_audio_ms"] for t in turns if t["first_audio_ms"] is not None])
                figures[f"{voice} / {path}"] = first
                target = (500, 800) if path.startswith("command") else (1500, 2500)
                rows.append(
                    {
                        "voice": voice,
                        "path": path,
                        **first,
                        "target": f"P50≤{target[0]} P95≤{target[1]}",
                        "result": min(
                            mark(first["p50"], target[0]), mark(first["p95"], target[1]), key=len
                        ),
                    }
                )
    return {"figures": figures, "engines": engines, "rows": rows}
