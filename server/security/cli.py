"""``xiaozhi-server cert``: generate a self-signed TLS pair and print its SHA-256 fingerprint.

Writes ``security.tls.cert_file``/``key_file`` (or ``--cert``/``--key``); refuses to overwrite an
existing pair without ``--force``. Then enable TLS (``security.tls.enabled: true``) and give
clients the certificate: ``xiaozhi-device --ca var/tls/server.crt``, ``xiaozhi-conformance
--ca …``, or compare the fingerprint when a browser asks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from server.config import Settings
from server.security.tls import fingerprint_sha256, write_self_signed

CERT_HELP = """Generate a self-signed TLS certificate and key, and print its SHA-256 fingerprint.

It writes security.tls.cert_file and key_file (or --cert/--key) and refuses to overwrite an
existing pair without --force. Then turn TLS on (security.tls.enabled: true, or
XIAOZHI_SECURITY__TLS__ENABLED=true) and give clients the certificate: xiaozhi-device --ca FILE,
xiaozhi-conformance --ca FILE, or compare the fingerprint when a browser asks. Real boards need a
publicly trusted certificate (see docs/troubleshooting.md)."""

CERT_EXAMPLES = """examples:
  xiaozhi-server cert                        a pair for localhost, this host and its LAN address
  xiaozhi-server cert --name 192.168.1.10 --days 825
  xiaozhi-server cert --show                 the fingerprint of the existing certificate"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xiaozhi-server cert",
        description=CERT_HELP,
        epilog=CERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cert", type=Path, help="certificate file (default: security.tls.cert_file)")
    p.add_argument("--key", type=Path, help="key file (default: security.tls.key_file)")
    p.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="HOST",
        help="extra host name or IP in the certificate (repeatable; localhost, 127.0.0.1, this "
        "host's name and LAN address are always in)",
    )
    p.add_argument("--days", type=int, default=825, help="validity in days")
    p.add_argument("--force", action="store_true", help="overwrite an existing pair")
    p.add_argument(
        "--show", action="store_true", help="only print the fingerprint of the existing certificate"
    )
    return p


def main_cert(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    tls = settings.security.tls
    cert, key = args.cert or tls.cert_file, args.key or tls.key_file
    if args.show:
        if not cert.is_file():
            print(f"xiaozhi-server cert: no certificate at {cert}")
            return 1
        print(f"SHA-256 fingerprint: {fingerprint_sha256(cert.read_bytes())}")
        return 0
    if (cert.exists() or key.exists()) and not args.force:
        print(f"xiaozhi-server cert: {cert} or {key} exists; --force to replace the pair")
        return 1
    pair = write_self_signed(cert, key, extra_names=tuple(args.name), days=args.days)
    print(f"certificate: {pair.cert_file}")
    print(f"key:         {pair.key_file} (mode 0600)")
    print(f"names:       {', '.join(pair.names)}")
    print(f"SHA-256 fingerprint: {pair.fingerprint}")
    print(
        "enable it with security.tls.enabled: true (XIAOZHI_SECURITY__TLS__ENABLED=true); "
        f"clients trust it with --ca {pair.cert_file}"
    )
    return 0
