"""Start-up check that the chosen ASR, dialogue and TTS agree, from their declared capabilities.

Returns warnings for chains that work but will disappoint (free text recognised with nothing to
answer it, an LLM that only ever hears the command phrases, a reply language the voice cannot
speak) and raises :class:`~server.errors.ConfigError` for a chain that cannot work at all (a
language the recogniser does not know).
"""

from __future__ import annotations

from server.errors import ConfigError
from server.providers.base import (
    AsrCapabilities,
    AsrProvider,
    DialogueCapabilities,
    DialogueProvider,
    TtsCapabilities,
    TtsProvider,
)
from server.session.replies import base_language


def check_chain(
    asr: AsrProvider, dialogue: DialogueProvider, tts: TtsProvider, language: str
) -> list[str]:
    """Warnings (empty: all agree) for this chain serving ``language`` (en, zh or auto)."""
    a = getattr(asr, "capabilities", None) or AsrCapabilities()
    d = getattr(dialogue, "capabilities", None) or DialogueCapabilities()
    t = getattr(tts, "capabilities", None) or TtsCapabilities()
    an, dn, tn = (getattr(p, "name", "?") for p in (asr, dialogue, tts))
    warnings: list[str] = []
    wanted = set(a.languages) if language == "auto" else {base_language(language)}
    if missing := wanted - set(a.languages):
        raise ConfigError(
            f"the {an} recogniser does not understand {', '.join(sorted(missing))}; "
            f"it knows {', '.join(sorted(a.languages))} (xiaozhi-server models lists others)"
        )
    if missing := (wanted & set(a.languages)) - set(t.languages):
        warnings.append(
            f"the {tn} voice cannot speak {', '.join(sorted(missing))} (it speaks "
            f"{', '.join(sorted(t.languages))}), so such replies will sound wrong: set "
            "asr.language to one it speaks (e.g. en-US) or tts.provider: routing"
        )
    if a.free_text and not a.grammar and not d.free_text:
        warnings.append(
            f"{an} recognises free text but the {dn} dialogue only answers its "
            "commands: other questions get 'I can't help with that'"
        )
    if d.free_text and a.grammar and not a.free_text:
        warnings.append(
            f"the {dn} dialogue answers free text, but {an} only recognises the "
            "command phrases: set asr.mode=lm or a free-text recogniser"
        )
    return warnings
