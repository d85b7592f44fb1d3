"""Does the model read each attribute word? The rise of its denoising loss on world clips when the caption names
another colour, shape or direction than the clip shows, per noise level.

Adherence says whether samples come out right; this says why not, and at which noise level. A word the backbone
uses makes the loss rise when it is wrong; a word it ignores leaves the loss where it was, whatever the samples
happen to show. The swapped caption is written by the same sentence frame with the same random draws, so only the
attribute's words differ, in every language.

From a clone's root: `python -m research.probes.reliance [--model FILE] [--clips 48] [--seed 0]` prints the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
import torch

from aiprod_core.model import VideoModel
from aiprod_core.train.data import item_seed, video_tensor
from aiprod_core.world import BASIC_MOTIONS, COLOURS, EASY, LANGUAGES, SHAPES, caption, make_clip
from research.probes.command import run_probe

# attribute -> (SceneObject field, the values a caption may name instead); directions: the four moving ones
ATTRIBUTES = {
    "colour": ("colour", COLOURS),
    "shape": ("shape", SHAPES),
    "direction": ("motion", BASIC_MOTIONS[:4]),
}


@torch.no_grad()
def text_reliance(model: VideoModel, clips: int = 48, sigmas: tuple[float, ...] = (0.95, 0.9, 0.8, 0.6, 0.4),
                  noises: int = 2, seed: int = 0) -> dict:
    """Per attribute and sigma: the loss with the wrong attribute word over the loss with the right one, minus 1
    (0: the word is ignored), over `clips` one-object moving clips in every language, `noises` draws each."""
    c = model.config
    spec = dataclasses.replace(EASY, frames=c.frames, height=c.height, width=c.width, motions=BASIC_MOTIONS[:4])
    rng = np.random.default_rng(seed)
    items = [make_clip(item_seed(seed, 9, i), spec, language=LANGUAGES[i % len(LANGUAGES)]) for i in range(clips)]
    x0 = model.vae.encode(torch.stack([video_tensor(k.frames) for k in items]))
    captions = {"right": [k.caption for k in items]}
    for name, (field, values) in ATTRIBUTES.items():
        wrong = []
        for i, k in enumerate(items):
            o = k.scene.objects[0]
            other = values[(values.index(getattr(o, field)) + int(rng.integers(1, len(values)))) % len(values)]
            scene = dataclasses.replace(k.scene, objects=(dataclasses.replace(o, **{field: other}),))
            # the caption's own draws: the same frame and synonyms as the right caption
            wrong.append(caption(scene, k.language, np.random.default_rng([item_seed(seed, 9, i), 2]))[0])
        captions[name] = wrong
    encoded = {name: model.text_encoder.encode(texts) for name, texts in captions.items()}

    def loss(name: str, s: float, noise: torch.Tensor) -> float:
        ctx, mask = encoded[name]
        x_t = (1 - s) * x0 + s * noise
        v = model.backbone(x_t, torch.full((len(items),), s), ctx, mask)
        return float(((v.float() - (noise - x0).float()) ** 2).mean())

    rows = {name: {} for name in ATTRIBUTES}
    for s in sigmas:
        totals = dict.fromkeys(captions, 0.0)
        for n in range(noises):
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed * 1000 + n))
            for name in captions:
                totals[name] += loss(name, s, noise)
        for name in ATTRIBUTES:
            rows[name][f"{s:g}"] = totals[name] / totals["right"] - 1
    return {"model": model.source, "clips": clips, "sigmas": list(sigmas), "loss_rise_with_wrong_word": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.probes.reliance", description=(
        "how much the denoising loss rises when the caption names the wrong colour, shape or direction, per noise "
        "level (JSON): which words the model reads"))
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    return run_probe(p, argv, lambda args, model: print(json.dumps(
        text_reliance(model, clips=args.clips, seed=args.seed), indent=2)))


if __name__ == "__main__":
    sys.exit(main())
