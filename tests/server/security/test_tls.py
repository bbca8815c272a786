"""The self-signed pair of ``xiaozhi-server cert`` and the server/client contexts."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from server.config import load_settings
from server.errors import ConfigError
from server.security.cli import main_cert
from server.security.settings import TlsSettings
from server.security.tls import client_context, server_context, write_self_signed


def test_generated_pair_loads_and_the_fingerprint_is_the_certificates(tmp_path: Path) -> None:
    pair = write_self_signed(tmp_path / "s.crt", tmp_path / "s.key", extra_names=("xz.lan",))
    assert pair.key_file.stat().st_mode & 0o777 == 0o600
    assert "localhost" in pair.names and "127.0.0.1" in pair.names and "xz.lan" in pair.names
    openssl = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(pair.cert_file)],
        capture_output=True,
        text=True,
    )
    if openssl.returncode == 0:
        assert openssl.stdout.strip().split("=", 1)[1] == pair.fingerprint
    ctx = server_context(
        TlsSettings(enabled=True, cert_file=pair.cert_file, key_file=pair.key_file)
    )
    assert isinstance(ctx, ssl.SSLContext) and ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert client_context(pair.cert_file).verify_mode == ssl.CERT_REQUIRED
    assert client_context(insecure=True).verify_mode == ssl.CERT_NONE


def test_tls_off_needs_no_files_and_missing_files_say_how_to_fix(tmp_path: Path) -> None:
    assert server_context(TlsSettings()) is None
    missing = TlsSettings(enabled=True, cert_file=tmp_path / "no.crt", key_file=tmp_path / "k")
    with pytest.raises(ConfigError, match="xiaozhi-server cert"):
        server_context(missing)
    (tmp_path / "no.crt").write_text("not a certificate")
    (tmp_path / "k").write_text("not a key")
    with pytest.raises(ConfigError, match="cannot load"):
        server_context(missing)


def test_cert_command_writes_prints_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        security={"tls": {"cert_file": tmp_path / "c.pem", "key_file": tmp_path / "k.pem"}}
    )
    assert main_cert([], settings) == 0
    out = capsys.readouterr().out
    assert "SHA-256 fingerprint: " in out and (tmp_path / "c.pem").is_file()
    fingerprint = out.split("SHA-256 fingerprint: ")[1].split()[0]
    assert main_cert([], settings) == 1
    assert "--force" in capsys.readouterr().out
    assert main_cert(["--show"], settings) == 0
    assert fingerprint in capsys.readouterr().out
