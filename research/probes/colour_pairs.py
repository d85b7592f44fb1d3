"""Prompts that differ only in their colour word: how far apart the text encoder puts them, and what the model draws.

A prompt drawn in the wrong colour at every guidance scale, cfg 1 included (the conditional prediction alone), is
read wrong before the backbone's guidance plays a part; the cosine between the masked-mean text states of the prompt
and of its colour-swapped twin shows how little the encoder tells the two apart.

From a clone's root: `python -m research.probes.colour_pairs [--model FILE] [--json]`.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from aiprod_core.eval.classify import classify_clip
from aiprod_core.model import load_model
from aiprod_core.pipeline import generate
from aiprod_core.train.objectives import masked_mean

PAIRS = (("a red circle moving left", "a green circle moving left"),
         ("a red circle moving right", "a green circle moving right"),
         ("a red square moving left", "a green square moving left"))
CFGS = (1.0, 3.0, 6.0)
SEEDS = range(4)


def pooled(text_encoder, prompt: str) -> torch.Tensor:
    return masked_mean(*text_encoder.encode([prompt]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a checkpoint (default: the shipped model)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    out = {}
    with torch.no_grad():
        for prompt, twin in PAIRS:
            cos = F.cosine_similarity(pooled(model.text_encoder, prompt), pooled(model.text_encoder, twin)).item()
            drawn = {cfg: [classify_clip(generate(model, prompt, seed=s, cfg=cfg, progress=False)).colour
                           for s in SEEDS] for cfg in CFGS}
            out[prompt] = {"cosine_with_" + twin: round(cos, 3), "colour_drawn_by_cfg": drawn}
    print(json.dumps(out, indent=1) if args.json else "\n".join(f"{p}: {v}" for p, v in out.items()))
    return out


if __name__ == "__main__":
    main()
