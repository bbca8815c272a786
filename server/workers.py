"""``xiaozhi-server --workers N``: a supervisor running N full servers as child processes.

Each worker is a whole :class:`server.app.Server` (WebSocket, MQTT off unless configured, HTTP
with OTA and ``/metrics``) in its own process and event loop. By default each is on **its own
ports**: worker ``i`` listens on WebSocket port ``P + i`` and HTTP port ``H + i`` (``--port P
--http-port H``), so nginx can keep a board's reconnects on the same worker (``hash
$http_device_id consistent``), Prometheus can scrape each worker's ``/metrics`` and tell a dead
one apart (``up == 0``), and a restarted worker is reachable at a known address.

With ``--reuse-port`` every worker listens on the same two ports (SO_REUSEPORT): the kernel
spreads new connections over them, so one machine uses all its cores with no proxy in front.
A board's reconnect may then land on another worker, which is fine (what outlives a connection
is in the store), and ``/metrics`` answers for whichever worker took the request. Shared state
lives in the store (``storage_url``: PostgreSQL for several machines; the SQLite file works for
workers on one machine). MQTT + UDP needs own ports (a board's MQTT session and its UDP audio
must reach the same worker).

The supervisor restarts a worker that exits on its own (crash, ``kill -9``) after a back-off
(``RESTART_BACKOFF_S`` doubling to ``RESTART_MAX_S``; reset once a worker stayed up
``STABLE_S``), forwards every worker's output prefixed ``[worker i]``, and on SIGTERM/SIGINT
stops them all with SIGTERM (each finishes its replies, ``websocket.shutdown_grace_s``), then
SIGKILL after ``grace + STOP_MARGIN_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Final

from server.errors import ConfigError

logger = logging.getLogger(__name__)

RESTART_BACKOFF_S: Final = 0.5
RESTART_MAX_S: Final = 15.0
STABLE_S: Final = 30.0
STOP_MARGIN_S: Final = 5.0
_PORT_FLAGS: Final = ("--port", "--http-port", "--workers")
EXIT_CONFIG: Final = 2
"""A worker's exit status for bad settings (server.cli): not restarted, the supervisor stops."""


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_ports(
    ws_port: int, http_port: int, n: int, *, shared: bool = False
) -> list[tuple[int, int]]:
    """``[(websocket_port, http_port)]`` of workers 0..n-1 (``shared``: all on the same two,
    ``--reuse-port``); ConfigError if the ranges clash."""
    if n < 1:
        raise ConfigError("--workers must be at least 1")
    if ws_port == 0 or http_port == 0:
        raise ConfigError(
            "--workers needs fixed ports (nginx and Prometheus point at them): give --port and "
            "--http-port, or keep the defaults 8000 and 8003"
        )
    if shared:
        if ws_port == http_port:
            raise ConfigError(f"the WebSocket and HTTP ports are both {ws_port}: choose two")
        return [(ws_port, http_port)] * n
    ws, http = set(range(ws_port, ws_port + n)), set(range(http_port, http_port + n))
    if ws & http:
        raise ConfigError(
            f"with {n} workers the WebSocket ports {ws_port}-{ws_port + n - 1} overlap the HTTP "
            f"ports {http_port}-{http_port + n - 1}: choose e.g. --http-port {ws_port + 100}"
        )
    if max(ws | http) > 65535:
        raise ConfigError(f"with {n} workers the ports would pass 65535")
    return [(ws_port + i, http_port + i) for i in range(n)]


def child_argv(argv: list[str], ws_port: int, http_port: int) -> list[str]:
    """The supervisor's own arguments minus ``--workers``/ports, plus this worker's ports."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        if name in _PORT_FLAGS:
            takes_value = "=" not in word and not (name == "--workers" and _no_value(argv, word))
            skip = takes_value
            continue
        out.append(word)
    return [*out, "--port", str(ws_port), "--http-port", str(http_port)]


def _no_value(argv: list[str], word: str) -> bool:
    i = argv.index(word)
    return i + 1 >= len(argv) or argv[i + 1].startswith("-")


@dataclass
class Worker:
    index: int
    ws_port: int
    http_port: int
    proc: asyncio.subprocess.Process | None = None
    started_s: float = 0.0
    backoff_s: float = RESTART_BACKOFF_S
    restarts: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """Runs the workers until :meth:`stop`; see the module docstring for the rules."""

    def __init__(
        self,
        argv: list[str],
        n: int,
        ws_port: int,
        http_port: int,
        grace_s: float,
        *,
        shared: bool = False,
    ):
        self._argv = argv
        ports = worker_ports(ws_port, http_port, n, shared=shared)
        self.workers = [Worker(i, w, h) for i, (w, h) in enumerate(ports)]
        self._grace_s = grace_s
        self._stopping = asyncio.Event()
        self.exit_code = 0

    async def _spawn(self, worker: Worker) -> None:
        cmd = [
            sys.executable,
            "-m",
            "server",
            *child_argv(self._argv, worker.ws_port, worker.http_port),
        ]
        env = dict(os.environ)
        worker.ready.clear()
        worker.proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        worker.started_s = time.monotonic()
        print(
            f"worker {worker.index} started (pid {worker.proc.pid}, WebSocket port "
            f"{worker.ws_port}, HTTP port {worker.http_port})",
            flush=True,
        )

    async def _pump(self, worker: Worker) -> None:
        proc = worker.proc
        assert proc is not None and proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("xiaozhi-server ready:"):
                worker.ready.set()
            sys.stdout.write(f"[worker {worker.index}] {line}\n")
            sys.stdout.flush()

    async def _run_worker(self, worker: Worker) -> None:
        """Keep one worker alive until the supervisor stops."""
        while not self._stopping.is_set():
            await self._spawn(worker)
            assert worker.proc is not None
            pump = asyncio.create_task(self._pump(worker))
            code = await worker.proc.wait()
            await asyncio.wait({pump}, timeout=1.0)
            if self._stopping.is_set():
                return
            if code == EXIT_CONFIG and not worker.ready.is_set():
                print(f"worker {worker.index}: configuration error; stopping", flush=True)
                self.exit_code = EXIT_CONFIG  # restarting would fail the same way
                self.stop()
                return
            if time.monotonic() - worker.started_s >= STABLE_S:
                worker.backoff_s = RESTART_BACKOFF_S
            print(
                f"worker {worker.index} exited ({_describe(code)}); restarting in "
                f"{worker.backoff_s:.1f} s",
                flush=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), worker.backoff_s)
            worker.backoff_s = min(2 * worker.backoff_s, RESTART_MAX_S)
            worker.restarts += 1

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._run_worker(w)) for w in self.workers]
        waiter = asyncio.create_task(self._stopping.wait())
        ready = asyncio.create_task(self._all_ready())
        await asyncio.wait({ready, waiter}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not waiter.done():
            ports = ", ".join(f"{w.ws_port}/{w.http_port}" for w in self.workers)
            print(
                f"xiaozhi-server workers ready: {len(self.workers)} (WebSocket/HTTP ports {ports})",
                flush=True,
            )
        await waiter
        await self._stop_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _all_ready(self) -> None:
        for worker in self.workers:
            await worker.ready.wait()

    def stop(self) -> None:
        self._stopping.set()

    async def _stop_all(self) -> None:
        procs = [w.proc for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(p.wait()) for p in procs]
        if waits:
            await asyncio.wait(waits, timeout=self._grace_s + STOP_MARGIN_S)
            for proc in procs:
                if proc.returncode is None:
                    logger.warning("worker pid %d did not stop in time: killed", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*waits, return_exceptions=True)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


async def supervise(
    argv: list[str], n: int, ws_port: int, http_port: int, grace_s: float, *, shared: bool = False
) -> int:
    """Run ``n`` workers until SIGTERM/SIGINT; the exit status (2: a worker's settings are bad).
    ``shared``: every worker on the same ports (``--reuse-port``)."""
    supervisor = Supervisor(argv, n, ws_port, http_port, grace_s, shared=shared)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, supervisor.stop)
    await supervisor.run()
    return supervisor.exit_code
