"""What to load for a sherpa-onnx model, and checking it is loadable *before* loading it.

A missing file makes sherpa-onnx raise, but a wrong model file (wrong inputs, metadata or
tokens) makes it exit the process. So :func:`probe` first checks every file exists, then loads
the recognizers once in a child process; only if that child succeeds does the server load them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import SherpaAsrSettings
from server.providers.base import ProviderUnavailable

DOWNLOAD_HINT = (
    "download one with `xiaozhi-server models download NAME` (list: `xiaozhi-server models list`)"
)

# kind -> (factory, file arguments)
ONLINE_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "transducer": ("from_transducer", ("encoder", "decoder", "joiner")),
    "paraformer": ("from_paraformer", ("encoder", "decoder")),
    "zipformer2_ctc": ("from_zipformer2_ctc", ("model",)),
    "wenet_ctc": ("from_wenet_ctc", ("model",)),
    "nemo_ctc": ("from_nemo_ctc", ("model",)),
}
# kind -> (factory, {settings key: factory argument})
OFFLINE_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "sense_voice": ("from_sense_voice", {"model": "model"}),
    "paraformer": ("from_paraformer", {"model": "paraformer"}),
    "nemo_ctc": ("from_nemo_ctc", {"model": "model"}),
    "wenet_ctc": ("from_wenet_ctc", {"model": "model"}),
    "zipformer_ctc": ("from_zipformer_ctc", {"model": "model"}),
    "transducer": (
        "from_transducer",
        {"encoder": "encoder", "decoder": "decoder", "joiner": "joiner"},
    ),
    "whisper": ("from_whisper", {"encoder": "encoder", "decoder": "decoder"}),
}


@dataclass(frozen=True)
class LoadSpec:
    """``sherpa_onnx.<cls>.<factory>(**kwargs)``."""

    cls: str
    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        import sherpa_onnx

        return getattr(getattr(sherpa_onnx, self.cls), self.factory)(**self.kwargs)


def _file(model_dir: Path, name: str | None, what: str) -> str:
    if not name:
        raise ProviderUnavailable(f"sherpa-onnx ASR: set the {what} file name in the settings")
    path = Path(name) if Path(name).is_absolute() else model_dir / name
    if not path.is_file() or path.stat().st_size == 0:
        raise ProviderUnavailable(f"sherpa-onnx ASR: {what} file {path} is missing or empty")
    return str(path)


def _model_dir(value: Any, where: str) -> Path:
    if not value:
        raise ProviderUnavailable(f"sherpa-onnx ASR: set {where}.model_dir; {DOWNLOAD_HINT}")
    path = Path(value)
    if not path.is_dir():
        raise ProviderUnavailable(
            f"sherpa-onnx ASR: model directory {path} not found; {DOWNLOAD_HINT}"
        )
    return path


def online_spec(settings: SherpaAsrSettings) -> LoadSpec:
    """The streaming recognizer for ``settings``; raises ProviderUnavailable on missing files."""
    model_dir = _model_dir(settings.model_dir, "asr.sherpa")
    factory, file_args = ONLINE_KINDS[settings.kind]
    kwargs: dict[str, Any] = {
        "tokens": _file(model_dir, settings.tokens, "tokens"),
        "num_threads": settings.num_threads,
    }
    for arg in file_args:
        kwargs[arg] = _file(model_dir, getattr(settings, arg), f"{settings.kind} {arg}")
    return LoadSpec("OnlineRecognizer", factory, kwargs)


def offline_spec(second_pass: dict[str, Any], num_threads: int) -> LoadSpec:
    """The offline second-pass recognizer, e.g. ``{"kind": "sense_voice", "model_dir": ...,
    "model": "model.int8.onnx"}``; other keys are passed to the sherpa factory."""
    options = dict(second_pass)
    kind = options.pop("kind", None)
    if kind not in OFFLINE_KINDS:
        raise ProviderUnavailable(
            f"sherpa-onnx ASR: second_pass.kind must be one of {sorted(OFFLINE_KINDS)}, "
            f"got {kind!r}"
        )
    model_dir = _model_dir(options.pop("model_dir", None), "asr.sherpa.second_pass")
    factory, file_args = OFFLINE_KINDS[kind]
    kwargs: dict[str, Any] = {
        "tokens": _file(model_dir, options.pop("tokens", "tokens.txt"), "second-pass tokens"),
        "num_threads": num_threads,
    }
    for key, arg in file_args.items():
        kwargs[arg] = _file(model_dir, options.pop(key, None), f"second-pass {kind} {key}")
    kwargs.update(options)
    return LoadSpec("OfflineRecognizer", factory, kwargs)


_PROBE = """
import json, sys
import sherpa_onnx
for cls, factory, kwargs in json.loads(sys.argv[1]):
    getattr(getattr(sherpa_onnx, cls), factory)(**kwargs)
"""


def probe(specs: list[LoadSpec], timeout_s: float = 300.0) -> None:
    """Load ``specs`` in a child process; raise ProviderUnavailable if it fails or dies."""
    payload = json.dumps([[s.cls, s.factory, s.kwargs] for s in specs])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, payload],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProviderUnavailable(
            f"sherpa-onnx ASR: loading the model took over {timeout_s:.0f} s"
        ) from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) or f"exit status {proc.returncode}"
        files = ", ".join(
            str(v)
            for s in specs
            for k, v in s.kwargs.items()
            if isinstance(v, str) and k != "language"
        )
        raise ProviderUnavailable(
            f"sherpa-onnx ASR: the model does not load (wrong or corrupt file, or wrong "
            f"`kind`?): {detail}. Files: {files}"
        )
