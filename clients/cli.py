"""``xiaozhi-transcribe``: transcribe a WAV file or the microphone through any of the three
protocols of the transcription service, with a progress bar and reconnect/resend built in.

    xiaozhi-transcribe sherpa speech.wav
    xiaozhi-transcribe sequenced speech.wav --token "$JWT"
    xiaozhi-transcribe sequenced --mic 10 --token "$JWT"
    xiaozhi-transcribe upload speech.wav --token "$JWT" --device-id my-browser

Exit status: 0 done, 1 failure (connection, refusal), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from clients.audio import ClientError, microphone, read_wav
from clients.progress import Progress


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaozhi-transcribe",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  xiaozhi-transcribe sherpa speech.wav\n"
        "  xiaozhi-transcribe sequenced speech.wav --token $JWT\n"
        "  xiaozhi-transcribe upload recording.webm --token $JWT",
    )
    parser.add_argument("protocol", choices=("sherpa", "sequenced", "upload"))
    parser.add_argument("file", nargs="?", type=Path, help="16-bit WAV (upload: any file)")
    parser.add_argument("--mic", type=float, metavar="S", help="record S seconds instead")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="WebSocket port (default 8000)")
    parser.add_argument("--token", default="", help="JWT for /ws/asr and /ws/record")
    parser.add_argument("--device-id", default="", help="device id for recordings")
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="speed relative to real time; 0 = as fast as possible (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


async def _audio(args: argparse.Namespace) -> np.ndarray:
    if args.mic:
        parts = [chunk async for chunk in microphone(1600, args.mic)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)
    if args.file is None:
        raise ClientError("give a WAV file or --mic SECONDS")
    return await asyncio.to_thread(read_wav, args.file)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    base = f"ws://{args.host}:{args.port}"
    if args.protocol == "upload":
        from clients.upload_client import upload_chunks

        if args.file is None:
            raise ClientError("upload needs a file")
        data = args.file.read_bytes()
        chunks = [data[i : i + 16000] for i in range(0, len(data), 16000)] or [b""]
        bar = Progress(len(chunks))
        result = await upload_chunks(
            f"{base}/ws/record",
            args.token,
            chunks,
            device_id=args.device_id,
            fmt=args.file.suffix.lstrip("."),
            on_sent=lambda n, _ws: bar.advance(),
        )
        bar.close()
        return {
            "recording": result.id,
            "done": result.done,
            "reconnects": result.reconnects,
            **({"text": result.text} if result.finals else {}),
        }
    samples = await _audio(args)
    bar = Progress(len(samples) // 1600 + 1)
    if args.protocol == "sherpa":
        from clients.sherpa_client import transcribe_sherpa

        def on_message(m: dict[str, Any]) -> None:
            bar.advance()
            bar.note(str(m.get("text", "")))

        sherpa = await transcribe_sherpa(f"{base}/", samples, pace=args.pace, on_message=on_message)
        bar.close()
        return {"text": sherpa.text, "segments": sherpa.segments}
    from clients.sequenced_client import SequencedClient

    client = SequencedClient(
        f"{base}/ws/asr", args.token, pace=args.pace, on_sent=lambda _c, _s: bar.advance()
    )
    seq_result = await client.transcribe(samples)
    bar.close()
    return {
        "text": seq_result.text,
        "finals": list(seq_result.finals.values()),
        "ended": seq_result.ended,
        "reconnects": seq_result.reconnects,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        out = asyncio.run(_run(args))
    except ClientError as exc:
        print(f"xiaozhi-transcribe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1
    if args.json:
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        print(out.get("text") if "text" in out else json.dumps(out, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
