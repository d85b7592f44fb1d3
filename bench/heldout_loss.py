"""Rectified-flow loss of several models on the same held-out clips, as JSON: a like-for-like loss for
comparing training runs whose last phases saw different data (e.g. with and without the curriculum).

    python bench/heldout_loss.py runs/a/model.safetensors runs/b/model.safetensors --clips 64

Every model sees the same clips, captions (held-out sentence frames, all languages), sigmas and noise; the
loss is reported on easy scenes (one object, the basic motions: what `eval adherence` asks for) and hard
ones (one or two objects, diagonals, speeds, sizes, bounces, entering and leaving, crossing).
"""

from __future__ import annotations

import argparse
import json

import torch

from aiprod_core.model import load_model
from aiprod_core.train.data import item_seed, video_tensor
from aiprod_core.train.objectives import flow_loss, sample_sigmas
from aiprod_core.world import EASY, HARD, make_clip

SEED = 424242  # far from training's and evaluation's seeds


@torch.no_grad()
def heldout_loss(model, spec, clips: int, batch: int = 8) -> float:
    total = 0.0
    for start in range(0, clips, batch):
        items = range(start, min(clips, start + batch))
        cs = [make_clip(item_seed(SEED, i), spec, split="heldout") for i in items]
        x0 = model.vae.encode(torch.stack([video_tensor(c.frames) for c in cs]))
        gens = [torch.Generator().manual_seed(item_seed(SEED, i, 1)) for i in items]
        tokens = x0.shape[2] * x0.shape[3] * x0.shape[4]
        sigma = torch.cat([sample_sigmas(1, tokens, g) for g in gens])
        noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in gens])
        ids, mask = model.text_encoder.tokenize([c.caption for c in cs])
        context = model.text_encoder(ids, mask)
        for j in range(len(cs)):  # per clip, so that the mean does not depend on the batch split
            total += flow_loss(model.backbone, x0[j:j + 1], context[j:j + 1], mask[j:j + 1], sigma[j:j + 1],
                               noise[j:j + 1]).item()
    return total / clips


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help=".safetensors model files")
    p.add_argument("--clips", type=int, default=64)
    args = p.parse_args()
    out = {"bench": "held-out rectified-flow loss, same clips, sigmas and noise for every model", "clips": args.clips,
           "models": {}}
    for path in args.models:
        model = load_model(path)
        model.backbone.eval()
        out["models"][path] = {name: round(heldout_loss(model, spec, args.clips), 4)
                               for name, spec in (("easy", EASY), ("hard", HARD))}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
