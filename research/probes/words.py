"""What the text encoder alone reads from a caption: the attribute heads of training, on its pooled states.

A training state holds the text encoder and the linear heads that learn colour, shape and motion from its pooled
output. Read on captions in training and held-out sentence frames, they show which new frames the encoder
misreads before any clip is drawn: a frame whose words pull the colour one way misleads the backbone too. It
takes seconds, where `aiprod eval adherence` takes minutes.

From a clone's root: `python -m research.probes.words runs/x/state.safetensors [--json]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import torch

from aiprod_core.checkpoint import check_safetensors, read_config, read_safetensors
from aiprod_core.text import TextEncoder, load_text_encoder
from aiprod_core.train.data import ATTRIBUTE_CLASSES, item_seed
from aiprod_core.train.objectives import AttributeHeads
from aiprod_core.train.state import load_state
from aiprod_core.world import (
    ALL_SHAPES,
    BASIC_MOTIONS,
    COLOURS,
    EASY,
    LANGUAGES,
    MOTIONS,
    SPLITS,
    captioned_scene,
)
from research.probes.command import run_probe

CLASSES = {"colour": COLOURS, "shape": ALL_SHAPES, "motion": MOTIONS}


def load_text_state(path: str | os.PathLike) -> tuple[TextEncoder, AttributeHeads]:
    """The text encoder and attribute heads of a training state (`state.safetensors` of an `aiprod train` run)."""
    config = read_config(path, read_safetensors(path, load_tensors=False)[1])
    encoder = load_text_encoder(config.text)
    heads = AttributeHeads(config.text.dim, ATTRIBUTE_CLASSES)
    load_state(path, {"text_encoder": encoder, "heads": heads})
    return encoder.float().eval(), heads.eval()


@torch.no_grad()
def read_attributes(encoder: TextEncoder, heads: AttributeHeads, per_language: int = 128, seed: int = 2,
                    languages: tuple[str, ...] = LANGUAGES) -> dict:
    """Share of one-object captions whose colour, shape and motion the heads name right, per language and split,
    and per held-out sentence frame (with an example caption and its three commonest wrong readings)."""
    spec = dataclasses.replace(EASY, motions=BASIC_MOTIONS)
    out: dict = {"per_language": {}, "heldout_frames": {}}
    totals = {split: {a: [] for a in CLASSES} for split in SPLITS}
    for lang in languages:
        li = LANGUAGES.index(lang)
        out["per_language"][lang] = {}
        for split in SPLITS:
            scenes, _, texts, frame_ids = zip(*(captioned_scene(item_seed(seed, li, i), spec, lang, split)
                                                for i in range(per_language)), strict=True)
            hidden, mask = encoder.encode(list(texts))
            logits = heads.logits(hidden.float(), mask)
            truth = {a: [names.index(getattr(s.objects[0], a)) for s in scenes] for a, names in CLASSES.items()}
            pred = {a: logits[a].argmax(-1).tolist() for a in CLASSES}
            scores = {a: float(np.mean([p == t for p, t in zip(pred[a], truth[a], strict=True)])) for a in CLASSES}
            for a, v in scores.items():
                totals[split][a].append(v)
            if split == "heldout":
                frames = out["heldout_frames"].setdefault(lang, {})
                for i, (f, text) in enumerate(zip(frame_ids, texts, strict=True)):
                    row = frames.setdefault(str(f), {"example": text, "captions": 0, "right": dict.fromkeys(CLASSES, 0),
                                                     "wrong": {}})
                    row["captions"] += 1
                    for a, names in CLASSES.items():
                        if pred[a][i] == truth[a][i]:
                            row["right"][a] += 1
                        else:
                            key = f"{a}: {names[truth[a][i]]} -> {names[pred[a][i]]}"
                            row["wrong"][key] = row["wrong"].get(key, 0) + 1
            out["per_language"][lang][split] = scores
    for frames in out["heldout_frames"].values():
        for row in frames.values():
            row["right"] = {a: n / row["captions"] for a, n in row["right"].items()}
            row["wrong"] = dict(sorted(row["wrong"].items(), key=lambda kv: -kv[1])[:3])
    out["mean"] = {split: {a: float(np.mean(v)) for a, v in attrs.items()} for split, attrs in totals.items()}
    out["worst_heldout"] = {a: min(out["per_language"][lang]["heldout"][a] for lang in languages) for a in CLASSES}
    return out


def print_attributes(args: argparse.Namespace) -> None:
    result = read_attributes(*load_text_state(args.state), per_language=args.per_language, seed=args.seed,
                             languages=tuple(args.languages))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for split, scores in result["mean"].items():
        print(f"{split:9s} " + "  ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    for lang, splits in result["per_language"].items():
        print(f"  {lang}  held out " + "  ".join(f"{k} {v:.2f}" for k, v in splits["heldout"].items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.probes.words", description=(
        "what the text encoder alone reads: a training state's attribute heads on captions in training and "
        "held-out sentence frames, per language and frame"))
    p.add_argument("state", help="state.safetensors of an `aiprod train` run")
    p.add_argument("--per-language", type=int, default=128, help="captions per language and split")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES, metavar="LANG")
    p.add_argument("--json", action="store_true", help="print JSON (with each held-out frame's readings)")
    return run_probe(p, argv, lambda args, _: print_attributes(args), model=False,
                     check=lambda args: check_safetensors(args.state, "the state"))


if __name__ == "__main__":
    sys.exit(main())
