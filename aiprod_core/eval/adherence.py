"""Prompt adherence: generate clips for held-out sentence frames (or plain prompts as people type them, also kept
out of training: split "plain") in every language, label them with the OpenCV classifier and compare with the prompt's scene. The floor (each clip judged against another
prompt's scene) and the ceiling (the world's own renders of the same scenes) come from the same run."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from ..model import VideoModel
from ..models.lora import LoRA
from ..models.vae import decode_latent
from ..sampling.loop import sample_latent
from ..text import EmbeddingCache, encode_cached
from ..train.data import item_seed, video_tensor
from ..world import BASIC_MOTIONS, EASY, LANGUAGES, SHAPES, WorldSpec, make_clip
from .classify import KNOWN_SHAPES, classify_clip, count_objects

log = logging.getLogger(__name__)
ATTRIBUTES = ("colour", "shape", "direction")


def _truth(clip) -> dict[str, str]:
    o = clip.scene.objects[0]
    return {"colour": o.colour, "shape": o.shape, "direction": o.motion}


def _score(labels: list, truths: list[dict]) -> dict[str, float]:
    return {a: float(np.mean([getattr(lb, a) == t[a] for lb, t in zip(labels, truths)])) for a in ATTRIBUTES}


def _confusion(labels: list, truths: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """Per attribute: for each asked value, how often each value was seen (where the misses go)."""
    out: dict = {a: {} for a in ATTRIBUTES}
    for lb, t in zip(labels, truths):
        for a in ATTRIBUTES:
            row = out[a].setdefault(t[a], {})
            row[str(getattr(lb, a))] = row.get(str(getattr(lb, a)), 0) + 1
    return out


def _objects_drawn(frames: list[np.ndarray]) -> dict[str, float]:
    """Shares of clips whose middle frame shows no object, one, or more: the prompts ask for one, and a model that
    also learned two-object scenes may draw a second one, which the classifier can then judge instead."""
    counts = [min(count_objects(f), 2) for f in frames]
    return {k: counts.count(n) / len(counts) for k, n in (("none", 0), ("one", 1), ("more", 2))}


def _judge_language(model: VideoModel, clips: list, spec: WorldSpec, steps: int, cfg: float, seed: int,
                    candidates: tuple[str, ...], cache: EmbeddingCache) -> tuple[list[tuple], list, list]:
    """Generate one language's clips from their captions and label them, with the world's own renders and those
    renders through the model's VAE: (rows of (truth, generated, world, caption, through-VAE labels), the middle
    frames of the generated clips, those of the world's)."""
    context, mask = encode_cached(model.text_encoder, [k.caption for k in clips], cache)
    neg, neg_mask = encode_cached(model.text_encoder, [""] * len(clips), cache)
    shape = (len(clips), *model.config.vae.latent_shape(spec.frames, spec.height, spec.width))
    with model.loras_applied():
        latent = sample_latent(model.backbone, context, mask, neg, neg_mask, shape, steps=steps, cfg=cfg, seed=seed)
    videos = decode_latent(model.vae, latent).numpy()
    world = torch.stack([video_tensor(k.frames) for k in clips])
    through_vae = decode_latent(model.vae, model.vae.encode(world)).numpy()
    rows = [(_truth(k), classify_clip(v, shapes=candidates), classify_clip(k.frames, shapes=candidates), k.caption,
             classify_clip(r, shapes=candidates)) for k, v, r in zip(clips, videos, through_vae)]
    return rows, [v[len(v) // 2] for v in videos], [k.frames[len(k.frames) // 2] for k in clips]


def _adherence_scores(rows: list[tuple], drawn: dict[str, list[np.ndarray]], languages: tuple[str, ...],
                      seed: int) -> dict:
    """The scores of rows (language, truth, generated, world, caption, through-VAE labels): overall, per language,
    the floor (truths shuffled), the two ceilings, where the misses go, and an example per language."""
    truths = [r[1] for r in rows]
    generated = [r[2] for r in rows]
    shuffled = [truths[i] for i in np.random.default_rng(seed).permutation(len(truths))]
    per_language = {
        lang: _score([r[2] for r in rows if r[0] == lang], [r[1] for r in rows if r[0] == lang]) for lang in languages
    }
    return {
        "generated": _score(generated, truths),
        "per_language": per_language,
        "worst_language": {a: min(per_language.values(), key=lambda s: s[a])[a] for a in ATTRIBUTES},
        "floor_shuffled_prompts": _score(generated, shuffled),
        "ceiling_world_clips": _score([r[3] for r in rows], truths),
        "ceiling_through_vae": _score([r[5] for r in rows], truths),
        "confusion": _confusion(generated, truths),
        "objects_drawn": {k: _objects_drawn(v) for k, v in drawn.items()},
        # the first clip of each language, to see what the numbers mean
        "examples": [{"language": r[0], "caption": r[4], "truth": r[1], "generated": {a: getattr(r[2], a) for a in ATTRIBUTES}}
                     for i, r in enumerate(rows) if i == 0 or rows[i - 1][0] != r[0]],
    }


@torch.no_grad()
def prompt_adherence(
    model: VideoModel,
    per_language: int = 8,
    steps: int = 20,
    cfg: float = 3.0,
    seed: int = 0,
    languages: tuple[str, ...] = LANGUAGES,
    shapes: tuple[str, ...] = SHAPES,
    spec: WorldSpec | None = None,
    split: str = "heldout",
    progress: bool = True,
    candidates: tuple[str, ...] | None = None,
    sizes: tuple[str, ...] = ("normal",),
) -> dict:
    """Accuracy per language and attribute on held-out caption frames (or, with split="train", on the
    sentence frames training used; with split="plain", on plain prompts such as "red circle, moving left", where a
    prompt that names no motion asks for a still object), with floor and ceiling.

    shapes: the shapes the prompts ask for. candidates: the shapes the classifier may answer (default: the
    default vocabulary plus `shapes`). The model's LoRAs (VideoModel.with_lora) apply while sampling.
    sizes: the object sizes of the prompts' scenes (names from world.SIZE_RANGES).

    Two ceilings: the world's own renders, and those renders passed through the model's VAE (what the
    backbone could reach at best, since every generated clip is a VAE decode)."""
    c = model.config
    candidates = candidates or tuple(dict.fromkeys((*SHAPES, *shapes)))
    spec = spec or dataclasses.replace(EASY, frames=c.frames, height=c.height, width=c.width, motions=BASIC_MOTIONS,
                                       shapes=shapes, sizes=sizes)
    cache = EmbeddingCache()
    rows = []  # (language, truth, generated labels, world labels, caption, labels through the VAE)
    drawn = {"generated": [], "world_clips": []}  # middle frames, for the object counts
    from tqdm.auto import tqdm

    bar = tqdm(total=len(languages) * per_language, desc="adherence", unit="clip", disable=not progress)
    for li, lang in enumerate(languages):
        clips = [make_clip(item_seed(seed, li, i), spec, language=lang, split=split) for i in range(per_language)]
        judged, generated_frames, world_frames = _judge_language(model, clips, spec, steps, cfg, seed + li,
                                                                      candidates, cache)
        rows += [(lang, *row) for row in judged]
        drawn["generated"] += generated_frames
        drawn["world_clips"] += world_frames
        bar.update(len(clips))
    bar.close()
    return {
        "model": model.source,
        "clips": len(rows),
        "caption_frames": split,
        "steps": steps,
        "cfg": cfg,
        "prompt_shapes": list(shapes),
        "sizes": list(sizes),
        "shape_candidates": list(candidates),
        **_adherence_scores(rows, drawn, languages, seed),
    }


def lora_adherence(model: VideoModel, lora: LoRA, strength: float = 1.0, name: str | None = None,
                   text_lora: LoRA | None = None, **kw) -> dict:
    """The same prompts and seeds without and with a LoRA, in one run, the classifier choosing among every
    shape it knows (so that a LoRA that turns old shapes into its new one is counted wrong): what the LoRA
    teaches and what it costs the old vocabulary. text_lora: the LoRA's text-encoder adapters, if it has any.
    `kw` as for prompt_adherence."""
    kw.setdefault("candidates", KNOWN_SHAPES)
    without = prompt_adherence(model, **kw)
    with_lora = prompt_adherence(model.with_lora(lora, strength, text_lora), **kw)
    return {
        "lora": name,
        "strength": strength,
        "without_lora": without,
        "with_lora": with_lora,
        "change": {a: with_lora["generated"][a] - without["generated"][a] for a in ATTRIBUTES},
    }
