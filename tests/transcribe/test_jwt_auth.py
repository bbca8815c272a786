"""HS256 tokens: signature, exp, sub, alg; reasons never echo the token."""

from __future__ import annotations

import base64
import json

import pytest

from server.transcribe.jwt_auth import TokenRejected, bearer, encode_hs256, verify_hs256

NOW = 1_700_000_000.0


def check(token: str, keys: list[str] | None = None) -> str:
    with pytest.raises(TokenRejected) as rejected:
        verify_hs256(token, ["k1"] if keys is None else keys, clock=lambda: NOW)
    assert token not in rejected.value.reason or not token
    return rejected.value.reason


def test_good_token_gives_claims_with_any_configured_key() -> None:
    token = encode_hs256({"sub": "alice", "exp": NOW + 60, "device": "d1", "admin": True}, "k2")
    claims = verify_hs256(token, ["k1", "k2"], clock=lambda: NOW)
    assert (claims.sub, claims.device, claims.admin) == ("alice", "d1", True)


def test_rejections_say_why() -> None:
    assert check(encode_hs256({"sub": "a", "exp": NOW + 60}, "other")) == "bad token signature"
    assert check(encode_hs256({"sub": "a", "exp": NOW - 60}, "k1")) == "token expired"
    assert check(encode_hs256({"sub": "a"}, "k1")) == "token has no numeric exp"
    assert check(encode_hs256({"exp": NOW + 60}, "k1")) == "token has no sub"
    assert check(encode_hs256({"sub": "a", "exp": NOW + 60, "nbf": NOW + 600}, "k1")).startswith(
        "token not valid yet"
    )
    assert check("abc").startswith("malformed")
    assert check("").startswith("missing token")
    assert check(encode_hs256({"sub": "a", "exp": NOW + 60}, "k1"), keys=[]).startswith("no token")


def test_alg_none_is_refused() -> None:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    forged = f"{part({'alg': 'none'})}.{part({'sub': 'a', 'exp': NOW + 60})}."
    assert check(forged) == "unsupported token algorithm (only HS256)"


def test_exp_within_leeway_passes() -> None:
    token = encode_hs256({"sub": "a", "exp": NOW - 2}, "k1")
    assert verify_hs256(token, ["k1"], clock=lambda: NOW).sub == "a"


def test_bearer_prefix_optional() -> None:
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc" and bearer("x") == "x"
