"""Device tokens as a specification: what the handshake accepts and why it refuses."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from server.security.auth import AUDIENCE, ISSUER, DeviceTokens, TokenRefused, load_secret

SECRET = b"k" * 64
MAC = "A0:B7:65:12:34:56"


def tokens(at: float = 1_000_000.0, ttl: float = 3600) -> DeviceTokens:
    return DeviceTokens(SECRET, ttl, clock=lambda: at)


def test_a_fresh_token_names_its_device_and_expires_after_the_ttl() -> None:
    token = tokens().issue(MAC)
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience=AUDIENCE, options={"verify_exp": False}
    )
    assert claims["sub"] == "a0:b7:65:12:34:56" and claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 3600
    assert tokens(at=1_000_000.0 + 3599).verify(token, MAC.lower()) == "a0:b7:65:12:34:56"


def test_expired_token_is_refused() -> None:
    token = tokens().issue(MAC)
    with pytest.raises(TokenRefused, match="expired"):
        tokens(at=1_000_000.0 + 3600 + 10).verify(token, MAC)


def test_forged_signature_is_refused() -> None:
    forged = DeviceTokens(b"x" * 64, 3600, clock=lambda: 1_000_000.0).issue(MAC)
    with pytest.raises(TokenRefused, match="signature"):
        tokens().verify(forged, MAC)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": MAC.lower(), "iat": 1, "exp": 2**40}
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(TokenRefused):
        tokens().verify(unsigned, MAC)
    hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    with pytest.raises(TokenRefused):
        tokens().verify(hs512, MAC)


def test_a_token_of_another_device_is_refused() -> None:
    token = tokens().issue("a0:b7:65:00:00:01")
    with pytest.raises(TokenRefused, match="another device"):
        tokens().verify(token, MAC)


def test_wrong_audience_missing_claims_and_garbage_are_refused() -> None:
    base = {"iss": ISSUER, "sub": MAC.lower(), "iat": 1_000_000, "exp": 1_003_600}
    for claims in ({**base, "aud": "recordings"}, {"aud": AUDIENCE, "sub": MAC.lower()}):
        with pytest.raises(TokenRefused):
            tokens().verify(jwt.encode(claims, SECRET, algorithm="HS256"), MAC)
    for garbage in ("", "abc", "a.b.c", "eyJ.eyJ.x"):
        with pytest.raises(TokenRefused):
            tokens().verify(garbage, MAC)


def test_a_token_issued_in_the_future_is_refused() -> None:
    token = tokens(at=2_000_000.0).issue(MAC)
    with pytest.raises(TokenRefused):
        tokens(at=1_000_000.0).verify(token, MAC)


def test_the_reason_never_contains_the_token() -> None:
    token = tokens().issue(MAC)
    with pytest.raises(TokenRefused) as caught:
        tokens(at=9e9).verify(token, MAC)
    assert token not in caught.value.reason and "eyJ" not in caught.value.reason


def test_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "jwt-secret"
    first = load_secret(path)
    assert len(first) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_secret(path) == first
