"""Whom the simulator trusts over TLS (``wss://``, ``https://``): the system CAs by default,
``--ca FILE`` (a self-signed server certificate from ``xiaozhi-server cert``, or a private CA),
or nobody checked at all with ``--insecure`` (a first look at a new set-up; never in production).

The choice is the process's, like ``SSL_CERT_FILE``: set once by the command line
(:func:`configure`), read by every connection (:func:`client_context`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from device.errors import UsageError


@dataclass(frozen=True)
class TlsTrust:
    ca_file: Path | None = None
    insecure: bool = False


_trust = TlsTrust()


def configure(ca_file: Path | None = None, *, insecure: bool = False) -> None:
    """Set the trust of every later connection; UsageError for an unreadable ``ca_file``."""
    global _trust
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--ca {ca_file}: no such file")
    _trust = TlsTrust(ca_file, insecure)


def client_context() -> ssl.SSLContext:
    """A fresh client context for the current trust."""
    if _trust.insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    ca = str(_trust.ca_file) if _trust.ca_file is not None else None
    return ssl.create_default_context(cafile=ca)
