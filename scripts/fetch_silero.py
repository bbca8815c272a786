"""Provision ``silero_vad.onnx`` from the PyPI ``silero-vad`` wheel, checking its sha256.

The wheel is downloaded with ``pip download --no-deps`` (never installed: it would pull torch) and
only the one model file is unpacked.
Usage: ``python scripts/fetch_silero.py --out models/silero_vad.onnx``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MEMBER = "silero_vad/data/silero_vad.onnx"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default="6.2.3")
    parser.add_argument(
        "--sha256", default="1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
    )
    parser.add_argument("--out", type=Path, default=Path("models/silero_vad.onnx"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            tmp,
            f"silero-vad=={args.version}",
        ]
        if subprocess.run(cmd, check=False).returncode != 0:
            print("error: could not download the silero-vad wheel from PyPI", file=sys.stderr)
            return 1
        wheel = next(Path(tmp).glob("silero_vad-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != args.sha256:
        print(f"error: {MEMBER} has sha256 {digest}, expected {args.sha256}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".part")
    tmp_out.write_bytes(data)
    tmp_out.replace(args.out)
    print(f"silero VAD model ready: {args.out} ({len(data)} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
