"""Model download against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from server.models_download import (
    CATALOG,
    CatalogEntry,
    ModelDownloadError,
    download_model,
    main_models,
)

NAME = "tiny-model"
FILES = {"model.onnx": b"\x08\x07fake onnx" * 500, "tokens.txt": b"<blk> 0\nhello 1\n"}


def make_archive(top: str = NAME) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for fname, data in FILES.items():
            info = tarfile.TarInfo(f"{top}/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    def __init__(self) -> None:
        self.archive = make_archive()
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if not self.path.endswith(".tar.bz2"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.archive)))
                self.end_headers()
                self.wfile.write(outer.archive)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/{NAME}.tar.bz2"


@pytest.fixture()
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join(5)


def entry(url: str, sha256: str | None) -> dict[str, CatalogEntry]:
    e = CatalogEntry(
        NAME, url, "nemo_ctc", {"model": "model.onnx", "tokens": "tokens.txt"}, "test", sha256
    )
    return {NAME: e}


def test_download_verifies_checksum_and_unpacks(server: Server, tmp_path: Path) -> None:
    catalog = entry(server.url, hashlib.sha256(server.archive).hexdigest())
    path = download_model(NAME, tmp_path, progress=True, catalog=catalog)
    assert path == tmp_path / NAME
    assert {p.name: p.read_bytes() for p in path.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == [NAME]  # no temp files left
    assert download_model(NAME, tmp_path, progress=False, catalog=catalog) == path
    assert server.requests == 1  # already there: not downloaded again


def test_checksum_mismatch_keeps_nothing(server: Server, tmp_path: Path) -> None:
    catalog = entry(server.url, "0" * 64)
    with pytest.raises(ModelDownloadError, match="checksum mismatch"):
        download_model(NAME, tmp_path, progress=False, catalog=catalog)
    assert list(tmp_path.iterdir()) == []


def test_archive_without_the_expected_files(server: Server, tmp_path: Path) -> None:
    server.archive = make_archive(top="other")
    with pytest.raises(ModelDownloadError, match="lacks"):
        download_model(NAME, tmp_path, progress=False, catalog=entry(server.url, None))
    server.archive = b"not bz2"
    with pytest.raises(ModelDownloadError, match="not a valid"):
        download_model(NAME, tmp_path, progress=False, catalog=entry(server.url, None))
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_reported(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ModelDownloadError, match="HTTP 404"):
        download_model(NAME, tmp_path, progress=False, catalog=entry(server.url + "x", None))


def test_offline_gives_clear_advice(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    catalog = entry(f"http://127.0.0.1:{port}/x.tar.bz2", None)
    with pytest.raises(ModelDownloadError, match=r"could not reach.*machine with internet") as info:
        download_model(NAME, tmp_path, progress=False, catalog=catalog)
    assert str(tmp_path / NAME) in str(info.value)


def test_cli(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_models(["bogus"]) == 2
    assert main_models(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CATALOG)
    assert main_models(["download", "nope", "--dest", str(tmp_path)]) == 2
    assert "unknown model" in capsys.readouterr().err
    catalog = entry(server.url, None)
    args = ["download", NAME, "--dest", str(tmp_path), "--no-progress"]
    assert main_models(args, catalog=catalog) == 0
    out = capsys.readouterr().out
    assert f"model_dir: {tmp_path / NAME}" in out and "kind: nemo_ctc" in out
    bad = {NAME: replace(catalog[NAME], sha256="1" * 64)}
    assert (
        main_models([*args[:2], "--dest", str(tmp_path / "b"), "--no-progress"], catalog=bad) == 1
    )


def test_catalog_entries_are_complete() -> None:
    for name, e in CATALOG.items():
        assert e.name == name and e.url.endswith(f"/{name}.tar.bz2")
        assert e.url.startswith("https://github.com/k2-fsa/sherpa-onnx/releases/")
        assert "tokens" in e.files
        assert e.settings(Path("/m"))["model_dir"] == "/m"
