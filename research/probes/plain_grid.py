"""Every colour, shape and direction in one plain English phrasing: which combinations a model draws wrong.

"a {colour} {shape} moving {direction}" for the six colours, three shapes and four directions (72 prompts), each
on a few seeds, labelled by the project's classifier. The plain-frame eval samples attributes at random across
twelve languages; this grid walks every combination of the phrasing a user types first, so the pockets it misses
show (and a phase's `focus` can draw them more often: hard-example mining).

From a clone's root: `python -m research.probes.plain_grid [--model FILE] [--seeds 0,1] [--json]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter

from aiprod_core.eval.classify import classify_clip
from aiprod_core.model import load_model
from aiprod_core.pipeline import generate
from aiprod_core.world import COLOURS, SHAPES

DIRECTIONS = ("left", "right", "up", "down")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a checkpoint (default: the shipped model)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for colour, shape, direction in itertools.product(COLOURS, SHAPES, DIRECTIONS):
        prompt = f"a {colour} {shape} moving {direction}"
        for seed in seeds:
            got = classify_clip(generate(model, prompt, seed=seed, progress=False))
            rows.append({"want": [colour, shape, direction], "got": [got.colour, got.shape, got.direction],
                         "seed": seed})
    wrong = [r for r in rows if r["want"] != r["got"]]
    right = {a: round(sum(r["want"][i] == r["got"][i] for r in rows) / len(rows), 3)
             for i, a in enumerate(("colour", "shape", "direction"))}
    out = {"clips": len(rows), "all_right": round(1 - len(wrong) / len(rows), 3), **right,
           "wrong_by_colour": dict(Counter(r["want"][0] for r in wrong)),
           "wrong_combinations": sorted({tuple(r["want"]) for r in wrong}), "rows": rows}
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))
    return out


if __name__ == "__main__":
    main()
