"""Real PostgreSQL and nginx from the Debian packages, started on loopback ports for a test.

PostgreSQL refuses to run as root: as root the cluster is created and run by the ``postgres``
user (``runuser``) in a private temporary directory. Both are stopped by their context manager,
whatever the test did. Needs ``make setup`` (apt: postgresql nginx prometheus).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.timing import scaled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run make setup (apt-get install postgresql)")
    return path


def _as_db_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A fresh cluster on 127.0.0.1:PORT; yields ``postgresql://…/xiaozhi``; stopped on exit."""
    base = Path(tempfile.mkdtemp(prefix="xiaozhi-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for p in (base, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    port = free_port()
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run(
        _as_db_user([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", user]), **run
    )  # type: ignore[call-overload]
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on"
    log = base / "pg.log"
    try:
        subprocess.run(
            _as_db_user([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                         "-o", opts, "start"]),
            **run,
        )  # type: ignore[call-overload]  # fmt: skip
        subprocess.run(
            _as_db_user([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user,
                         "xiaozhi"]),
            **run,
        )  # type: ignore[call-overload]  # fmt: skip
        yield f"postgresql://{user}@127.0.0.1:{port}/xiaozhi"
    finally:
        subprocess.run(
            _as_db_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


NGINX_SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "xiaozhi.conf"


def nginx_config(listen_port: int, ws_ports: list[int], http_ports: list[int], prefix: Path) -> str:
    """The shipped site (deploy/nginx/xiaozhi.conf) with the test's ports, inside a minimal
    main config: every upstream ``server`` line is replaced by the workers given."""
    site: list[str] = []
    upstream = ""
    for line in NGINX_SITE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("upstream "):
            upstream = stripped.split()[1]
        if upstream and stripped.startswith("server 127.0.0.1:"):
            if "#first" in stripped:
                ports = ws_ports if upstream == "xiaozhi_websocket" else http_ports
                rest = stripped.split(" ", 2)[2]  # the parameters after the address
                site += [f"    server 127.0.0.1:{p} {rest}" for p in ports]
            continue
        if stripped == "}":
            upstream = ""
        if stripped.startswith("listen "):
            line = f"    listen 127.0.0.1:{listen_port};"
        site.append(line)
    return (
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        "worker_processes 1;\nevents { worker_connections 4096; }\n"
        f"http {{\n  access_log {prefix}/access.log;\n"
        f"  client_body_temp_path {prefix}/body;\n  proxy_temp_path {prefix}/proxy;\n"
        f"  fastcgi_temp_path {prefix}/fcgi;\n  uwsgi_temp_path {prefix}/uwsgi;\n"
        f"  scgi_temp_path {prefix}/scgi;\n" + "\n".join(site) + "\n}\n"
    )


@contextlib.contextmanager
def nginx(ws_ports: list[int], http_ports: list[int]) -> Iterator[int]:
    """nginx in front of the given workers on a free loopback port (yielded); stopped on exit."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise RuntimeError("nginx not found: run make setup (apt-get install nginx)")
    prefix = Path(tempfile.mkdtemp(prefix="xiaozhi-nginx-"))
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(port, ws_ports, http_ports, prefix))
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + scaled(15)
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"nginx did not start: {err}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(prefix, ignore_errors=True)
