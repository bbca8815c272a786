"""The layering contract of ``make lint`` (``.importlinter``): kept, and able to fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("protocol", "iot", "server", "device", "conformance", "bench", "demo", "clients")


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_import_breaks_the_build(tmp_path: Path) -> None:
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "protocol" / "bad.py").write_text("import server\n")
    (tmp_path / "device" / "bad.py").write_text("from server import app\n")
    (tmp_path / "server" / "app.py").write_text("")
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "protocol imports nothing of ours BROKEN" in result.stdout
    assert "server and device never import each other BROKEN" in result.stdout
    assert "protocol.bad -> server" in result.stdout
    shutil.rmtree(tmp_path)
