"""Every example prompt a user is shown draws what it says on the shipped model: the prompts of README.md
(`aiprod generate "..."` and `generate(model, "...")`) and the prompt texts of the shipped workflows, each from its
text alone on seeds 0-3 with the command's defaults (20 steps, cfg 3), labelled by the project's classifier.

The attributes a prompt asks for come from the captions' attribute words in every language: its colour, its shape,
and its direction of motion where it names one (the workflows' bare "a blue circle" is moved by a camera preset or
a video, which the text alone does not say). Prompts about something the base model does not draw are listed in
SKIPPED with the reason.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from aiprod_core.eval.classify import classify_clip
from aiprod_core.pipeline import generate, load_model
from aiprod_core.world import LANGUAGES, SHAPES, attribute_words

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2, 3)
_NO_SPACES = {"zh", "ja", "ko", "ar", "hi"}  # attribute words may be joined to other letters (as tests/test_world.py)
# what the base model is not meant to draw, and why; each prompt that asks for it is skipped with that reason
SKIPPED = {"star": "the star is what the LoRA examples teach; the base model draws circles, squares and triangles"}
# prompts the shipped model does not yet follow on every seed, with what it draws (measured, seeds 0-3); each is an
# expected failure that must fail: once the model follows it, its test reports so and the entry goes
KNOWN_FAILURES = {
    "a red circle moving left": "draws a green circle moving left on seeds 0-3 (so do 'red circle, moving left', "
                                "'A red circle moving left.' and 'a red circle moving up')",
    "a yellow circle moving up": "draws a yellow square on seed 1, and moves down on seeds 1 and 3",
    "a red circle moving to the right": "draws a yellow circle on seed 1",
    "a blue square moving up": "moves down on seed 0 and stays still on seed 3",
}
_README_PROMPT = re.compile(r'aiprod generate "([^"]+)"|\bgenerate\(\w+, "([^"]+)"')


def readme_prompts() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [a or b for a, b in _README_PROMPT.findall(text)]


def workflow_prompts() -> list[str]:
    """The text of every AIPRODTextEncode node of workflows/api, except the empty negative prompts and the graphs
    that load LTX-2 (their prompts are for that model, not the shipped one)."""
    texts = []
    for path in sorted((ROOT / "workflows" / "api").glob("*.json")):
        graph = json.loads(path.read_text(encoding="utf-8"))
        if any(node.get("class_type") == "AIPRODLTX2Loader" for node in graph.values()):
            continue
        for node in graph.values():
            text = node.get("inputs", {}).get("text") if node.get("class_type") == "AIPRODTextEncode" else None
            if isinstance(text, str) and text.strip():
                texts.append(text)
    return texts


def _found(prompt: str, form: str, language: str) -> bool:
    if language in _NO_SPACES:
        return form in prompt
    return re.search(rf"(?<!\w){re.escape(form)}(?!\w)", prompt, re.IGNORECASE) is not None


def asked(prompt: str) -> dict[str, str]:
    """{"colour", "shape", "direction"} the prompt names (each only if named), from every language's attribute
    words. Where forms
    overlap ("vers le haut à gauche" holds "à gauche"), the longest form found decides."""
    out: dict[str, str] = {}
    for attribute, table in (("colour", "colour"), ("shape", "shape"), ("direction", "motion")):
        hits = {}  # value -> longest form of it found
        for language in LANGUAGES:
            for value, forms in attribute_words(language)[table].items():
                for form in forms:
                    if _found(prompt, form, language) and len(form) > len(hits.get(value, "")):
                        hits[value] = form
        if hits:
            out[attribute] = max(hits, key=lambda v: len(hits[v]))
    return out


def _cases() -> list:
    cases, seen = [], set()
    for where, prompts in (("README.md", readme_prompts()), ("workflows/api", workflow_prompts())):
        for prompt in prompts:
            if prompt in seen:
                continue
            seen.add(prompt)
            want = asked(prompt)
            skip = SKIPPED.get(want.get("shape", ""))
            marks = [pytest.mark.skip(reason=f"{prompt!r}: {skip}")] if skip else []
            if prompt in KNOWN_FAILURES:
                marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[prompt], strict=True))
            cases.append(pytest.param(prompt, where, id=prompt, marks=marks))
    return cases


@cache
def _model():
    return load_model()


def test_the_readme_and_the_workflows_have_example_prompts():
    prompts = readme_prompts()
    assert prompts and prompts[0] == "a red circle moving left", prompts[:3]
    assert workflow_prompts()
    assert asked("un cercle rouge qui va vers le haut à gauche")["direction"] == "up-left"
    assert asked("ein blaues Quadrat bewegt sich nach rechts") == {"colour": "blue", "shape": "square",
                                                                  "direction": "right"}
    assert asked("a green triangle") == {"colour": "green", "shape": "triangle"}
    assert asked("a green triangle standing still")["direction"] == "still"


@pytest.mark.parametrize(("prompt", "where"), _cases())
def test_example_prompt_draws_what_it_says(prompt: str, where: str):
    want = asked(prompt)
    assert {"colour", "shape"} <= set(want) and want["shape"] in SHAPES, f"{prompt!r} ({where}) names {want}"
    drawn = []
    for seed in SEEDS:
        labels = classify_clip(generate(_model(), prompt, seed=seed, progress=False))
        drawn.append({a: getattr(labels, a) for a in want})
    wrong = [(seed, d) for seed, d in zip(SEEDS, drawn) if d != want]
    assert not wrong, f"{prompt!r} ({where}) asks for {want}; drew {wrong} on seeds (seed, labels)"
