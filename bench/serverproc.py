"""The server under test as a subprocess (``python -m server``), read from /proc separately.

with ServerProcess(env={"XIAOZHI_ASR__MODE": "grammar"}) as srv:
    srv.ws_url, srv.cpu_s(), srv.rss_kib(), srv.threads(), srv.ledger_lines()

``ServerProcess(workers=2)`` runs ``--workers 2 --reuse-port`` instead: both workers on the same
two ports, CPU, RSS, threads and descriptors summed over the worker processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

READY = re.compile(r"WebSocket port (\d+), HTTP port (\d+)")
WORKERS_READY = re.compile(r"^xiaozhi-server workers ready: \d+ \(WebSocket/HTTP ports (\d+)/(\d+)")
WORKER_STARTED = re.compile(r"^worker (\d+) started \(pid (\d+)")
LEDGER = re.compile(r"turn (\d+)( cancelled)?: (.*?) frames=(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def settings_for(env: Mapping[str, str]) -> Any:
    """The server settings that ``env`` (a server's whole environment) gives."""
    from server.config import load_settings

    saved = dict(os.environ)
    try:  # pydantic-settings reads os.environ; swapped only for the call
        os.environ.clear()
        os.environ.update(env)
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def engines(env: Mapping[str, str], providers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Short names of the engines a server with ``env`` runs (``providers``: its /healthz)."""
    s = settings_for(env)
    found = dict(providers or {})
    asr, tts = found.get("asr", s.asr.provider), found.get("tts", s.tts.provider)
    whisper = f"Whisper {s.asr.whisper.model}"
    asr_text = {
        "twopass": f"twopass (pocketsphinx {s.asr.mode} + {whisper})",
        "pocketsphinx": f"pocketsphinx {s.asr.mode}",
        "whisper": whisper,
    }.get(asr, asr)
    voices = ", ".join(f"{lang} {engine}" for lang, engine in sorted(s.tts.by_language.items()))
    tts_text = f"routing ({voices})" if tts == "routing" else tts
    cache = f"cache {s.tts.cache_mb:g} MiB" if s.tts.cache_mb else "no cache"
    return {
        "vad": found.get("vad", s.vad.provider),
        "asr": f"{asr_text}, language {s.asr.language}",
        "dialogue": found.get("dialogue", s.dialogue.provider),
        "tts": f"{tts_text}, {cache}",
    }


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the workers need fixed ports)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """Start on enter (waits for the ready line, ≤ ``start_timeout_s``), SIGTERM/kill on exit."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        nofile: int = 4096,
        start_timeout_s: float = 90.0,
        workers: int = 0,
    ) -> None:
        self.workers = workers
        self._worker_pids: dict[int, int] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="xiaozhi-bench-")
        self.env = {
            **os.environ,
            "XIAOZHI_OTA__DB_PATH": str(Path(self._tmp.name) / "devices.sqlite3"),
            **(env or {}),
        }
        self.nofile = nofile
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.ws_port = 0
        self.http_port = 0
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def _limits(self) -> None:  # runs in the child before exec
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(self.nofile, hard) if hard != resource.RLIM_INFINITY else self.nofile
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))

    def __enter__(self) -> ServerProcess:
        if self.workers:
            ws, http = _free_port(), _free_port()
            while http == ws:
                http = _free_port()
            cmd = [sys.executable, "-m", "server", "--workers", str(self.workers), "--reuse-port"]
            cmd += ["--port", str(ws), "--http-port", str(http), "--log-level", "info"]
        else:
            cmd = [sys.executable, "-m", "server", "--port", "0", "--http-port", "0"]
            cmd += ["--log-level", "info"]
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=self._limits,  # only sets rlimits
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True).start()
        if not ready.wait(self.start_timeout_s) or not self.ws_port:
            tail = "\n".join(self._lines[-15:])
            self.stop()
            raise RuntimeError(f"server did not become ready:\n{tail}")
        return self

    def _pump(self, ready: threading.Event) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))
                if len(self._lines) > 200_000:
                    del self._lines[:100_000]
            if started := WORKER_STARTED.search(line):
                self._worker_pids[int(started.group(1))] = int(started.group(2))
            m = (WORKERS_READY if self.workers else READY).search(line)
            if m:
                self.ws_port, self.http_port = int(m.group(1)), int(m.group(2))
                ready.set()
        ready.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/xiaozhi/v1/"

    @property
    def ota_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/xiaozhi/ota/"

    def _pids(self) -> list[int]:
        """The processes that serve: the server, or the workers (not their supervisor)."""
        with self._lock:
            return sorted(self._worker_pids.values()) if self.workers else [self.pid]

    def cpu_s(self) -> float:
        """User+system CPU seconds of the server process(es) (all threads, plus waited-for
        children)."""
        total = 0
        for pid in self._pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
        return total / CLK_TCK

    def _status(self, key: str) -> int:
        total = 0
        for pid in self._pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        return total

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def threads(self) -> int:
        return self._status("Threads")

    def fds(self) -> int:
        return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in self._pids())

    def mark(self) -> int:
        """Position in the log; pass to :meth:`ledger` to read only later turns."""
        with self._lock:
            return len(self._lines)

    def ledger(self, since: int = 0) -> list[dict[str, object]]:
        """Parsed per-turn ledger log lines: durations in ms, ``cancelled``, ``frames``."""
        with self._lock:
            lines = self._lines[since:]
        out: list[dict[str, object]] = []
        for line in lines:
            m = LEDGER.search(line)
            if not m:
                continue
            item: dict[str, object] = {"turn": int(m.group(1)), "cancelled": bool(m.group(2))}
            for part in m.group(3).split():
                key, _, value = part.partition("=")
                if value.endswith("ms"):
                    item[key] = float(value[:-2])
            item["frames"] = int(m.group(4))
            out.append(item)
        return out

    def engines(self) -> dict[str, str]:
        """The engines this server runs: providers from ``/healthz``, details from its settings."""
        return engines(self.env, self.health().get("providers"))

    def health(self) -> dict[str, Any]:
        """The server's ``/healthz`` answer ({} when it does not answer)."""
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
                data = json.loads(response.read().decode())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def tail(self, n: int = 20) -> list[str]:
        with self._lock:
            return self._lines[-n:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._tmp.cleanup()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
