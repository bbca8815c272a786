"""TLS for both ports: the server's SSL context from a PEM pair, and a self-signed pair on request.

``xiaozhi-server cert`` (:func:`write_self_signed`) writes ``security.tls.cert_file``/``key_file``
(EC P-256, valid ``days``, subject alternative names for ``localhost``, ``127.0.0.1``, this host's
name and its LAN address, plus any given) and prints the certificate's SHA-256 fingerprint, the
value to compare when a client asks whether to trust it. Clients verify it with ``--ca
server.crt`` (the self-signed certificate is its own CA).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from server.errors import ConfigError
from server.security.settings import TlsSettings


def server_context(settings: TlsSettings) -> ssl.SSLContext | None:
    """The server-side context (TLS ≥ 1.2), or None when TLS is off.

    Raises :class:`ConfigError` naming the file and the fix when the pair is missing or unusable.
    """
    if not settings.enabled:
        return None
    for what, path in (("cert_file", settings.cert_file), ("key_file", settings.key_file)):
        if not path.is_file():
            raise ConfigError(
                f"security.tls.{what} {path} does not exist: give your certificate and key, or "
                "run `xiaozhi-server cert` to generate a self-signed pair there"
            )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"security.tls: cannot load {settings.cert_file} with {settings.key_file}: {exc}"
        ) from exc
    return context


def client_context(ca_file: Path | None = None, *, insecure: bool = False) -> ssl.SSLContext:
    """A client context: the system CAs, or ``ca_file`` (a self-signed server certificate), or no
    verification at all with ``insecure`` (tests, a first look at a new board set-up)."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def fingerprint_sha256(cert_pem: bytes) -> str:
    """``AB:CD:…`` SHA-256 over the DER certificate (what browsers show)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def _local_names() -> tuple[list[str], list[str]]:
    names = ["localhost", socket.gethostname()]
    addresses = ["127.0.0.1", "::1"]
    try:  # the LAN address: the source address of a route out (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            addresses.append(probe.getsockname()[0])
    except OSError:
        pass
    return names, addresses


@dataclass(frozen=True)
class GeneratedPair:
    cert_file: Path
    key_file: Path
    fingerprint: str
    names: tuple[str, ...]
    """Subject alternative names in the certificate."""


def write_self_signed(
    cert_file: Path, key_file: Path, *, extra_names: tuple[str, ...] = (), days: int = 825
) -> GeneratedPair:
    """Write a self-signed EC P-256 certificate and its key (mode 0600); returns the fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names, addresses = _local_names()
    for extra in extra_names:
        try:
            ipaddress.ip_address(extra)
            addresses.append(extra)
        except ValueError:
            names.append(extra)
    names, addresses = list(dict.fromkeys(names)), list(dict.fromkeys(addresses))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xiaozhi-server")])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in addresses
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    cert_file.write_bytes(cert_pem)
    return GeneratedPair(
        cert_file, key_file, fingerprint_sha256(cert_pem), tuple(names + addresses)
    )
