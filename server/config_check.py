"""Strict settings: unknown keys and variables, voices and files checked, one-line errors.

A typo must never silently fall back to a default (the server would start on 0.0.0.0 with the
wrong port and nobody would notice). Three checks, each raising
:class:`~server.errors.ConfigError` with a message that names the key and the closest valid one:

* :func:`check_environment`: every ``XIAOZHI_*`` variable must name a setting
  (``XIAOZHI_WEBSOCKT__PORT`` → "did you mean XIAOZHI_WEBSOCKET__PORT?"). Variables of the other
  programs (:data:`OTHER_PROGRAMS_PREFIXES`) are left alone.
* :func:`describe_validation_error`: turns pydantic's errors (unknown YAML key at any depth, bad
  value) into one line with suggestions.
* :func:`check_values`: provider names, TTS voices (asked from the engine: ``flite -lv``,
  ``espeak-ng --voices``) and explicitly configured files exist. Runs at start-up, not on every
  :func:`~server.config.load_settings` (it starts subprocesses).
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from server.config import DEFAULT_MODELS_DIR, Settings
from server.errors import ConfigError

ENV_PREFIX = "XIAOZHI_"
OTHER_PROGRAMS_PREFIXES = ("XIAOZHI_TEST_", "XIAOZHI_DEVICE_", "XIAOZHI_CONFORMANCE_",
                           "XIAOZHI_BENCH_")  # fmt: skip
"""Variables read by the test suite, simulator, conformance suite and benchmarks, not the server."""
VOICE_LIST_TIMEOUT_S = 10.0


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The settings section class behind a field annotation (``X``, ``X | None``), else None."""
    candidates = typing.get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_mapping(annotation: Any) -> bool:
    candidates = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
    origins = {typing.get_origin(annotation), *(typing.get_origin(c) for c in candidates)}
    return dict in origins or annotation is dict


def setting_paths(model: type[BaseModel] = Settings) -> Iterator[tuple[tuple[str, ...], bool]]:
    """Every key path of the settings, as ``(path, open)``; ``open`` paths are mappings that
    accept any key below them (``ota.hmac_keys``, ``asr.sherpa.second_pass``)."""
    for name, field in model.model_fields.items():
        section = section_model(field.annotation)
        yield (name,), _is_mapping(field.annotation)
        if section is not None:
            for sub, is_open in setting_paths(section):
                yield (name, *sub), is_open


def env_name(path: tuple[str, ...]) -> str:
    """``("websocket", "port")`` → ``XIAOZHI_WEBSOCKET__PORT``."""
    return ENV_PREFIX + "__".join(path).upper()


def closest(word: str, choices: list[str]) -> str | None:
    """The most similar choice (difflib), or None when nothing is close."""
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not found:
        lowered = {c.lower(): c for c in choices}
        found = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=1)]
    return found[0] if found else None


def check_environment(environ: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` naming every ``XIAOZHI_*`` variable that is not a setting."""
    known: dict[str, bool] = {env_name(path): is_open for path, is_open in setting_paths()}
    open_prefixes = tuple(name + "__" for name, is_open in known.items() if is_open)
    problems = []
    for raw in sorted(environ):
        name = raw.upper()
        if not name.startswith(ENV_PREFIX) or name.startswith(OTHER_PROGRAMS_PREFIXES):
            continue
        if name in known or name.startswith(open_prefixes):
            continue
        guess = closest(name, list(known))
        hint = f"; did you mean {guess}?" if guess else ""
        problems.append(f"unknown environment variable {raw}{hint}")
    if problems:
        raise ConfigError(
            "; ".join(problems) + " (every setting and its variable: docs/configuration.md)"
        )


def _section_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        model = section_model(model.model_fields[part].annotation)
    return model


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad key and why; an unknown key gets the closest valid one."""
    parts = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        where = ".".join(str(p) for p in loc) or "(top level)"
        if error.get("type") == "extra_forbidden" and loc:
            section = _section_at(loc[:-1])
            valid = sorted(section.model_fields) if section is not None else []
            guess = closest(str(loc[-1]), valid)
            hint = f"; did you mean {guess!r}?" if guess else ""
            listed = f" (valid keys here: {', '.join(valid)})" if valid else ""
            parts.append(f"{where}: unknown key{hint}{listed}")
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- values


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=VOICE_LIST_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def flite_voices() -> list[str]:
    """Voices compiled into ``flite`` (``flite -lv``); empty when flite is not installed."""
    binary = shutil.which("flite")
    if binary is None:
        return []
    out = _run([binary, "-lv"])
    return out.split(":", 1)[1].split() if ":" in out else out.split()


def espeak_voices() -> list[str]:
    """Names ``espeak-ng -v`` accepts: languages (``en-us``), voice names and voice files."""
    binary = shutil.which("espeak-ng") or shutil.which("espeak")
    if binary is None:
        return []
    names: list[str] = []
    for line in _run([binary, "--voices"]).splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            names += [cols[1], cols[3], cols[4], cols[4].rsplit("/", 1)[-1]]
    variants = _run([binary, "--voices=variant"]).splitlines()[1:]
    for line in variants:
        cols = line.split()
        if len(cols) >= 5:
            names += [cols[3], cols[4].rsplit("/", 1)[-1]]
    return list(dict.fromkeys(names))


def check_voice(provider: str, voice: str | None) -> None:
    """Raise :class:`ConfigError` when ``tts.voice`` is not a voice of the flite/espeak engine
    (other engines check their own voices when they start)."""
    if voice is None or provider not in ("flite", "espeak"):
        return
    if provider == "flite":
        if Path(voice).is_file():  # a .flitevox file
            return
        voices, listing = flite_voices(), "flite -lv"
        if voices and voice not in voices:
            raise ConfigError(
                f"tts.voice: flite has no voice {voice!r}; choose one of: {', '.join(voices)} "
                f"(or a .flitevox file)"
            )
        return
    voices, listing = espeak_voices(), "espeak-ng --voices"
    base, _, variant = voice.partition("+")
    lowered = {v.lower() for v in voices}
    if voices and (base.lower() not in lowered or (variant and variant.lower() not in lowered)):
        guesses = difflib.get_close_matches(base.lower(), sorted(lowered), n=5, cutoff=0.5)
        near = f"; closest: {', '.join(guesses)}" if guesses else ""
        raise ConfigError(
            f"tts.voice: espeak-ng has no voice {voice!r}{near} (all voices: `{listing}`; "
            "a variant is added with +, e.g. en-us+f3)"
        )


def _check_provider(kind: str, name: str) -> None:
    from server.providers import registry

    names = getattr(registry, kind.upper()).names()
    if name not in names:
        guess = closest(name, names)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise ConfigError(
            f"{kind}.provider: unknown {kind} provider {name!r}; {hint}choose one of: "
            f"{', '.join(names)}"
        )


def check_values(settings: Settings) -> None:
    """Check provider names, the TTS voice and configured files; raise :class:`ConfigError`."""
    _check_provider("vad", settings.vad.provider)
    _check_provider("asr", settings.asr.provider)
    _check_provider("dialogue", settings.dialogue.provider)
    _check_provider("tts", settings.tts.provider)
    from server.providers import registry

    if settings.tts.fallback not in registry.TTS.names():
        guess = closest(settings.tts.fallback, registry.TTS.names())
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise ConfigError(f"tts.fallback: unknown tts provider {settings.tts.fallback!r}{hint}")
    check_voice(settings.tts.provider, settings.tts.voice)
    model_path = settings.vad.model_path
    if model_path.parent != DEFAULT_MODELS_DIR and not model_path.is_file():
        raise ConfigError(f"vad.model_path: file {model_path} not found")
    if settings.tts.sherpa_model_dir is not None and not settings.tts.sherpa_model_dir.is_dir():
        raise ConfigError(f"tts.sherpa_model_dir: directory {settings.tts.sherpa_model_dir} "
                          "not found")  # fmt: skip
    sherpa_dir = settings.asr.sherpa.model_dir
    if settings.asr.provider.startswith("sherpa") and sherpa_dir and not sherpa_dir.is_dir():
        raise ConfigError(f"asr.sherpa.model_dir: directory {sherpa_dir} not found")
