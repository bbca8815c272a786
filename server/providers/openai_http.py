"""What the OpenAI-compatible speech providers share: headers, timeouts and how an HTTP failure
becomes a :class:`ProviderError` (retryable for a refused connect, a timeout, 429 and 5xx —
never for another 4xx, which a second attempt cannot fix).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from server.errors import ProviderError


def auth_headers(api_key: SecretStr) -> dict[str, str]:
    """``Authorization: Bearer`` when a key is set (local servers usually need none)."""
    key = api_key.get_secret_value()
    return {"Authorization": f"Bearer {key}"} if key else {}


def client_timeout(total_s: float, connect_s: float) -> Any:
    """An ``aiohttp.ClientTimeout`` (imported lazily with aiohttp)."""
    import aiohttp

    return aiohttp.ClientTimeout(total=total_s, sock_connect=connect_s)


def status_error(url: str, status: int, body: str, *, code: str) -> ProviderError:
    """An HTTP error answer; ``body`` is cut to 200 characters for the log."""
    detail = " ".join(body.split())[:200]
    retryable = status == 429 or status >= 500
    return ProviderError(f"{url} answered HTTP {status}: {detail}", code=code, retryable=retryable)


def transport_error(
    url: str, exc: BaseException, *, unreachable: str, timeout: str
) -> ProviderError:
    """A connection-level failure (refused, reset, DNS, timeout): always retryable."""
    if isinstance(exc, TimeoutError):
        return ProviderError(f"{url} did not answer in time", code=timeout, retryable=True)
    reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return ProviderError(f"cannot reach {url} ({reason[:200]})", code=unreachable, retryable=True)
