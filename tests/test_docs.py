"""The user's guide stays true to the code: README.md stays short and runs the same test command as CI, every
relative link in README.md, docs/ and research/ leads somewhere, every `aiprod` option is in docs/cli.md and every
node is in docs/comfyui.md."""

import argparse
import re
from pathlib import Path

import pytest

from aiprod_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "research").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def test_readme_is_a_short_guide():
    size = README.stat().st_size
    assert size <= 15_000, f"README.md is {size} bytes; keep it under 15 KB and move the rest to docs/ or research/"


def test_readme_runs_the_same_test_command_as_ci():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = [line for line in ci.splitlines() if "python -m pytest" in line]
    assert len(command) == 1, ".ci/run should run one pytest command line"
    assert command[0].strip() in README.read_text(encoding="utf-8"), (
        "README.md must show the test command .ci/run runs, character for character: " + command[0].strip())


def test_readme_installs_from_the_repository_url():
    url = re.search(r'^Repository = "(.+)"$', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), flags=re.M)
    assert url, "pyproject.toml has no [project.urls] Repository"
    assert f"git clone {url.group(1)}" in README.read_text(encoding="utf-8"), (
        f"README.md should clone {url.group(1)} (pyproject.toml's Repository)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(page):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and (resolved.is_dir() or anchor not in heading_anchors(resolved)):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)} links to: " + ", ".join(broken)


def all_options(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_options(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            for option in action.option_strings:
                yield " ".join(path), option


def test_every_cli_option_is_documented():
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = sorted({f"aiprod {cmd} {opt}".replace("  ", " ") for cmd, opt in all_options(build_parser())
                      if not re.search("`" + re.escape(opt) + r"[` \[,]", doc)})
    assert not missing, "document these options in docs/cli.md (as `--option ARG`): " + ", ".join(missing)


def test_every_node_is_documented():
    from nodes import NODE_CLASS_MAPPINGS

    doc = (ROOT / "docs" / "comfyui.md").read_text(encoding="utf-8")
    missing = [node_id for node_id in NODE_CLASS_MAPPINGS if f"`{node_id}`" not in doc]
    assert not missing, "add these nodes to docs/comfyui.md's socket table: " + ", ".join(missing)
