"""Pure bookkeeping of who may open a socket: failed-auth lockout and per-IP counts.

Fed with explicit ``now_s`` (monotonic seconds), no I/O, so the rules test without a clock:

* an IP with ``limit`` refused handshakes within ``window_s`` is locked out for ``lockout_s``
  (HTTP 429 then, whatever it sends: guessing tokens costs a minute per few tries);
* a good handshake does not reset the count (a stolen token does not launder a guesser);
* open sockets are counted per IP and in total; beyond either bound a handshake gets HTTP 503.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class FailedAuthLimiter:
    limit: int
    window_s: float
    lockout_s: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    lockouts: int = 0
    """IPs locked out so far (a metric)."""

    def locked(self, ip: str, now_s: float) -> float:
        """Seconds of lockout left for ``ip`` (0 when it may try)."""
        until = self._locked_until.get(ip)
        if until is None:
            return 0.0
        if now_s >= until:
            del self._locked_until[ip]
            return 0.0
        return until - now_s

    def failed(self, ip: str, now_s: float) -> bool:
        """Record one refused handshake; True when this one locked the IP out."""
        times = self._failures.setdefault(ip, deque())
        times.append(now_s)
        while times and times[0] <= now_s - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            self._locked_until[ip] = now_s + self.lockout_s
            self.lockouts += 1
            del self._failures[ip]
            return True
        self._forget_stale(now_s)
        return False

    def _forget_stale(self, now_s: float) -> None:
        """Keep memory bounded by the IPs that failed recently."""
        if len(self._failures) > 4096:
            for ip in [ip for ip, t in self._failures.items() if t[-1] <= now_s - self.window_s]:
                del self._failures[ip]


def host_of(remote: tuple[object, ...] | str | None) -> str:
    """The IP of a socket's peer address (``(host, port, …)``), ``?`` when unknown."""
    if isinstance(remote, tuple) and remote:
        return str(remote[0])
    if isinstance(remote, str) and remote:
        return remote.rsplit(":", 1)[0] if remote.count(":") == 1 else remote
    return "?"


@dataclass(frozen=True)
class ConnectionRefusal:
    reason: str
    """Safe to show the client and to log."""


def over_connection_limits(
    ip: str, open_peers: Iterable[str], *, per_ip: int, total: int
) -> ConnectionRefusal | None:
    """``open_peers``: the IP of every open socket, this one included."""
    counts = Counter(open_peers)
    if sum(counts.values()) > total:
        return ConnectionRefusal(f"server is full ({total} connections)")
    if counts[ip] > per_ip:
        return ConnectionRefusal(f"too many connections from {ip} (at most {per_ip})")
    return None
