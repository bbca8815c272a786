"""Failed-auth lockout and connection limits, with explicit time."""

from __future__ import annotations

from server.security.limits import FailedAuthLimiter, host_of, over_connection_limits


def test_the_limit_th_failure_in_the_window_locks_the_ip_out_for_the_lockout() -> None:
    limiter = FailedAuthLimiter(limit=3, window_s=60, lockout_s=30)
    assert not limiter.failed("10.0.0.5", 0.0)
    assert not limiter.failed("10.0.0.5", 1.0)
    assert limiter.locked("10.0.0.5", 1.5) == 0
    assert limiter.failed("10.0.0.5", 2.0)
    assert limiter.locked("10.0.0.5", 2.0) == 30
    assert limiter.locked("10.0.0.9", 2.0) == 0  # others are not affected
    assert limiter.locked("10.0.0.5", 31.9) > 0
    assert limiter.locked("10.0.0.5", 32.0) == 0
    assert limiter.lockouts == 1


def test_failures_older_than_the_window_do_not_count() -> None:
    limiter = FailedAuthLimiter(limit=3, window_s=10, lockout_s=30)
    for t in (0.0, 5.0, 11.0, 16.0, 22.0):
        assert not limiter.failed("10.0.0.5", t)
    assert limiter.failed("10.0.0.5", 23.0)


def test_connection_limits_per_ip_and_in_total() -> None:
    peers = ["10.0.0.1", "10.0.0.1", "10.0.0.2"]
    assert over_connection_limits("10.0.0.1", peers, per_ip=2, total=3) is None
    refusal = over_connection_limits("10.0.0.1", [*peers, "10.0.0.1"], per_ip=2, total=9)
    assert refusal is not None and "too many connections from 10.0.0.1" in refusal.reason
    full = over_connection_limits("10.0.0.3", [*peers, "10.0.0.3"], per_ip=9, total=3)
    assert full is not None and "full" in full.reason


def test_host_of_socket_addresses() -> None:
    assert host_of(("127.0.0.1", 5555)) == "127.0.0.1"
    assert host_of(("::1", 5555, 0, 0)) == "::1"
    assert host_of("10.0.0.1:80") == "10.0.0.1"
    assert host_of(None) == "?"
