"""An LLM dialogue that degrades to the local one instead of failing.

When the LLM endpoint is unreachable, times out or answers an HTTP error before saying anything,
:class:`FallbackDialogue` answers with the embedded :class:`LocalDialogue` what it can (device
commands, time and date, "what can you do") and says once per device and outage that the
assistant is offline. :class:`DialogueHealth` keeps the outage (since when, last error) for
``/healthz``, which reports ``degraded`` until the LLM answers again.

While degraded the LLM is tried again at most every ``retry_after_s`` seconds, so a dead endpoint
that times out does not add its timeout to every turn::

    ok --failure--> degraded --(retry_after_s passed) try LLM--success--> ok
                        ^---------------------------------failure--'
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from protocol.mcp import Tool
from server.config import DialogueSettings, OpenAISettings
from server.providers.base import (
    DialogueCapabilities,
    DialogueContext,
    DialogueEvent,
    DialogueProvider,
    TextDelta,
)
from server.providers.dialogue.local import LocalDialogue
from server.providers.dialogue.openai import LlmUnavailable

log = logging.getLogger(__name__)

OFFLINE_NOTICE = (
    "My language model is offline, so I can only control the device, tell the time and chat a "
    "little."
)
MAX_TOLD = 10_000
"""Devices remembered as told about the current outage (then the notice may repeat)."""
PROBE_TIMEOUT_S = 3.0

Probe = Callable[[], Awaitable[str | None]]
"""Checks the primary's endpoint: None when reachable, else why not."""


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


class DialogueHealth:
    """Whether the primary dialogue works; times from ``clock`` (monotonic s) and ``wall``."""

    def __init__(
        self,
        provider: str,
        *,
        retry_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.retry_after_s = retry_after_s
        self._clock, self._wall = clock, wall
        self.since: float | None = None
        """Wall-clock start (epoch s) of the current outage; None when healthy."""
        self.last_error = ""
        self.last_error_at = 0.0
        self.failures = 0
        """Failed attempts in the current outage."""
        self.outages = 0
        """Outages since start-up (the number of the current one while degraded)."""
        self._last_attempt = -float("inf")

    @property
    def degraded(self) -> bool:
        return self.since is not None

    def should_try(self) -> bool:
        """Healthy, or degraded long enough since the last attempt to try the primary again."""
        return not self.degraded or self._clock() - self._last_attempt >= self.retry_after_s

    def failed(self, reason: str) -> bool:
        """Record a failure; True when it starts a new outage."""
        self._last_attempt = self._clock()
        self.last_error, self.last_error_at = reason, self._wall()
        self.failures += 1
        if self.since is not None:
            return False
        self.since = self.last_error_at
        self.outages += 1
        self.failures = 1
        return True

    def succeeded(self) -> bool:
        """Record a success; True when it ends an outage."""
        self._last_attempt = self._clock()
        if self.since is None:
            return False
        self.since = None
        self.failures = 0
        return True

    def report(self) -> dict[str, Any]:
        """The ``/healthz`` entry of this provider."""
        out: dict[str, Any] = {"provider": self.provider, "status": "ok"}
        if self.since is not None:
            out.update(
                status="degraded",
                reason=self.last_error,
                since=_iso(self.since),
                last_error_at=_iso(self.last_error_at),
                failures=self.failures,
                answering_with="local dialogue (device commands, time, date, small talk)",
            )
        elif self.last_error:
            out["last_error"] = self.last_error
            out["last_error_at"] = _iso(self.last_error_at)
        return out


class FallbackDialogue:
    """``primary`` (an LLM) with ``local`` answering while the primary is unavailable."""

    def __init__(
        self,
        primary: DialogueProvider,
        local: LocalDialogue,
        *,
        retry_after_s: float = 30.0,
        probe: Probe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.local = local
        self.name: str = primary.name
        self.capabilities: DialogueCapabilities = primary.capabilities
        self.health = DialogueHealth(primary.name, retry_after_s=retry_after_s, clock=clock)
        self._probe = probe
        self._told: set[str] = set()

    def phrases(self, tools: Sequence[Tool]) -> list[str]:
        return self.primary.phrases(tools)

    def health_report(self) -> dict[str, Any]:
        return self.health.report()

    async def probe(self) -> None:
        """Check the endpoint once (start-up), so ``/healthz`` and the banner know at once."""
        if self._probe is None:
            return
        problem = await self._probe()
        if problem is None:
            self.health.succeeded()
        elif self.health.failed(problem):
            log.warning(
                "%s dialogue unavailable at start-up (%s): answering with the local dialogue "
                "until it is back",
                self.name,
                problem,
            )

    async def respond(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        if self.health.should_try():
            try:
                async for event in self.primary.respond(utterance, context):
                    yield event
            except LlmUnavailable as exc:
                if self.health.failed(str(exc)):
                    self._told.clear()
                    log.warning(
                        "%s dialogue unavailable (%s): answering with the local dialogue; "
                        "/healthz says degraded",
                        self.name,
                        exc,
                    )
            else:
                if self.health.succeeded():
                    log.info("%s dialogue is back; /healthz ok", self.name)
                return
        async for event in self._local_answer(utterance, context):
            yield event

    async def _local_answer(
        self, utterance: str, context: DialogueContext
    ) -> AsyncIterator[DialogueEvent]:
        who = context.device_id or f"session-{id(context.history)}"
        notice = who not in self._told
        if notice:
            if len(self._told) >= MAX_TOLD:
                self._told.clear()
            self._told.add(who)
        first_text = True
        async for event in self.local.respond(utterance, context):
            if isinstance(event, TextDelta) and first_text:
                first_text = False
                if notice:
                    yield TextDelta(OFFLINE_NOTICE + " ")
                    event = TextDelta(event.text.lstrip())
            yield event


def openai_probe(settings: OpenAISettings) -> Probe:
    """A probe of an OpenAI-compatible endpoint: ``GET {base_url}/models``; any HTTP answer
    below 500 counts as reachable (some servers have no ``/models``)."""
    url = settings.base_url.rstrip("/") + "/models"

    async def probe() -> str | None:
        headers = {}
        key = settings.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)) as http,
                http.get(url, headers=headers) as response,
            ):
                if response.status >= 500:
                    return f"HTTP {response.status} from {url}"
                if response.status in (401, 403):
                    return f"HTTP {response.status} from {url}: check dialogue.openai.api_key"
                return None
        except TimeoutError:
            return f"no answer from {url} within {PROBE_TIMEOUT_S:.0f} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"

    return probe


def build_dialogue(settings: DialogueSettings) -> DialogueProvider:
    """The dialogue named by ``settings.provider``; an ``openai`` one falls back to the local
    dialogue while the LLM is unavailable (unless ``settings.fallback`` is ``none``)."""
    from server.providers import registry

    if settings.provider != "openai" or settings.fallback == "none":
        provider: DialogueProvider = registry.DIALOGUE.create(settings.provider, settings)
        return provider
    primary = registry.DIALOGUE.create("openai", settings, raise_unreachable=True)
    return FallbackDialogue(
        primary,
        LocalDialogue(settings),
        retry_after_s=settings.llm_retry_after_s,
        probe=openai_probe(settings.openai),
    )
