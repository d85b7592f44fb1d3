"""recipes/ holds what users run (the chain that reproduces the shipped model, lora.json) and research/recipes/
the runs of the experiments; every recipe path the guide, the research pages, the benchmarks and the nodes name
is where they say."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"(?<![\w/.-])((?:research/)?recipes/[\w.-]+\.json)")


def test_every_named_recipe_exists():
    files = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("research/*.md"), *ROOT.glob("bench/*.py"),
             *ROOT.glob("nodes/*.py"), *ROOT.glob("scripts/*.py")]
    missing = sorted({f"{f.relative_to(ROOT)}: {name}" for f in files
                      for name in NAMED.findall(f.read_text(encoding="utf-8")) if not (ROOT / name).is_file()})
    assert not missing, "recipes named but not there: " + ", ".join(missing)


def test_the_shipped_models_chain_is_in_recipes():
    card = (ROOT / "docs" / "model-card.md").read_text(encoding="utf-8")
    chain = set(re.findall(r"--phases (recipes/[\w.-]+\.json)", card))
    assert len(chain) >= 9, chain
    assert all((ROOT / name).is_file() for name in chain)
