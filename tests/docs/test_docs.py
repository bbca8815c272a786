"""The documentation cannot rot: links resolve, generated pages are current, examples load.

* every relative link in README.md and docs/*.md points at a file of the repository, and every
  ``#anchor`` at a heading of that file (GitHub's anchor rules);
* docs/configuration.md and docs/commands.md equal what their generators print now;
* every YAML example of the settings in the docs loads with the strict loader, and the LLM
  set-up of docs/llm.md talks to an OpenAI-compatible server (a fake on loopback);
* the README's first screen still opens with ``make run`` and ``make test``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import REPO_ROOT, Settings, load_settings
from server.config_docs import render as render_configuration
from server.providers.base import DialogueContext, TextDelta
from server.providers.dialogue.fallback import build_dialogue
from server.spoken_commands import command_groups, demo_board_tools, render_markdown
from tests.server.http.fake_llm import ANSWER, FakeLlm

DOCS = REPO_ROOT / "docs"
PAGES = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SETTINGS_KEYS = set(Settings.model_fields)


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    text = FENCE.sub("", markdown)
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, candidate = 1, slug
        while candidate in found:
            candidate, n = f"{slug}-{n}", n + 1
        found.add(candidate)
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.is_relative_to(REPO_ROOT) or not path.exists():
            broken.append(f"{target}: no such file")
        elif (
            anchor
            and path.suffix == ".md"
            and anchor not in anchors(path.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{page.name}: {broken}"


def test_readme_links_every_docs_page() -> None:
    linked = {Path(t.partition("#")[0]).name for t in links(REPO_ROOT / "README.md")}
    missing = [p.name for p in DOCS.glob("*.md") if p.name not in linked]
    assert not missing
    assert "../shared" not in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_first_screen_opens_with_run_and_test() -> None:
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    first_block = "\n".join(lines[:8])
    assert first_block.index("make run") < first_block.index("make test")
    assert lines[0].startswith("# ") and lines[2] == "```sh"


def test_configuration_reference_is_current() -> None:
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == render_configuration(), (
        "docs/configuration.md is out of date: run python -m server.config_docs --write"
    )


def test_commands_page_is_current() -> None:
    committed = (DOCS / "commands.md").read_text(encoding="utf-8")
    assert committed == render_markdown(command_groups(demo_board_tools())), (
        "docs/commands.md is out of date: run xiaozhi-server commands --markdown > docs/commands.md"
    )


def settings_examples() -> list[tuple[str, dict[str, Any]]]:
    """Every YAML block of the docs whose keys are settings sections."""
    found = []
    for page in [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for lang, body in FENCE.findall(page.read_text(encoding="utf-8")):
            if lang != "yaml":
                continue
            data = yaml.safe_load(body)
            if isinstance(data, dict) and set(data) <= SETTINGS_KEYS:
                found.append((f"{page.name}:{next(iter(data))}", data))
    return found


EXAMPLES = settings_examples()


def test_the_docs_have_settings_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_settings_examples_load_strictly(
    example: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(example[1]))
    load_settings(config, environ={})


def llm_examples() -> dict[str, dict[str, Any]]:
    text = (DOCS / "llm.md").read_text(encoding="utf-8")
    blocks: dict[str, dict[str, Any]] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        for lang, body in FENCE.findall(section):
            data = yaml.safe_load(body) if lang == "yaml" else None
            if isinstance(data, dict) and "dialogue" in data:
                blocks[title.split(" ")[0]] = data
    return blocks


@pytest.fixture
async def llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    await fake.up()
    try:
        yield fake
    finally:
        await fake.down()


@pytest.mark.parametrize("name", ["Ollama", "DeepSeek", "OpenAI"])
async def test_llm_setups_talk_to_an_openai_compatible_server(
    name: str, llm: FakeLlm, tmp_path: Path
) -> None:
    example = llm_examples()[name]
    documented = example["dialogue"]["openai"]
    example["dialogue"]["openai"] = {**documented, "base_url": llm.base_url}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(example))
    environ = {} if name == "Ollama" else {"XIAOZHI_DIALOGUE__OPENAI__API_KEY": "sk-test"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environ.items():
            patch.setenv(key, value)
        settings = load_settings(config, environ=environ)
    assert settings.dialogue.provider == "openai"
    dialogue = build_dialogue(settings.dialogue)
    events = dialogue.respond("tell me something", DialogueContext())
    answer = "".join([e.text async for e in events if isinstance(e, TextDelta)])
    assert answer.strip() == ANSWER
    assert llm.requests[-1]["model"] == documented["model"]
    assert llm.requests[-1]["stream"] is True
    assert llm.authorizations[-1] == (None if name == "Ollama" else "Bearer sk-test")
