"""Write a folder of captioned clips for the LoRA walkthrough: stars, a shape the shipped model never saw,
captioned in three languages, plus (optionally) clips of its old vocabulary, so that the LoRA learns the star
without redrawing circles, squares and triangles (prior preservation, as in DreamBooth): clips the base model
itself generates for prompts of that vocabulary, or the synthetic world's own renders of them. It can also write
prompts of the old vocabulary for `aiprod train --preserve-prompts` (output preservation).

    python scripts/star_clips.py --out star_clips --stars 48 --prior 48
    python scripts/star_clips.py --out star_clips --stars 96 --preserve-prompts star_preserve.txt

Each clip is an .mp4 with a same-name .txt caption: the folder layout `aiprod train --data` reads.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from aiprod_core.model import VideoModel, load_model
from aiprod_core.pipeline import generate
from aiprod_core.video_io import write_video
from aiprod_core.world import EASY, LANGUAGES, SHAPES, captioned_scene, make_clip

STAR_SEED = 10_000  # far from the evaluation's seeds, so no evaluated scene is a training clip
PRIOR_SEED = 20_000
PRESERVE_SEED = 30_000


def write_star_clips(out: Path, count: int, languages: tuple[str, ...], sizes: tuple[str, ...] = ("normal",),
                     frames: int = 17, size: int = 64, fps: float = 8) -> None:
    """`count` clips of one star (any colour, the five basic motions, `sizes` from world.SIZE_RANGES),
    captions cycling through `languages`."""
    spec = dataclasses.replace(EASY, shapes=("star",), sizes=sizes, frames=frames, height=size, width=size)
    _write_world_clips(out, "star", STAR_SEED, count, spec, languages, fps)


def _write_world_clips(out: Path, prefix: str, seed: int, count: int, spec, languages: tuple[str, ...], fps: float) -> None:
    for i in range(count):
        clip = make_clip(seed + i, spec, language=languages[i % len(languages)])
        write_video(out / f"{prefix}_{i:03d}.mp4", clip.frames, fps=fps)
        (out / f"{prefix}_{i:03d}.txt").write_text(clip.caption, encoding="utf-8")


def write_prior_clips(out: Path, model: VideoModel, count: int, steps: int = 20, fps: float = 8) -> None:
    """`count` clips the model generates for captions of its own vocabulary, in every language."""
    spec = dataclasses.replace(EASY, shapes=SHAPES, frames=model.config.frames, height=model.config.height,
                               width=model.config.width)
    for i in range(count):
        caption = make_clip(PRIOR_SEED + i, spec, language=LANGUAGES[i % len(LANGUAGES)]).caption
        video = generate(model, caption, steps=steps, seed=PRIOR_SEED + i, progress=False)
        write_video(out / f"prior_{i:03d}.mp4", video, fps=fps)
        (out / f"prior_{i:03d}.txt").write_text(caption, encoding="utf-8")


def write_world_prior_clips(out: Path, count: int, frames: int = 17, size: int = 64, fps: float = 8) -> None:
    """`count` of the world's own clips of the old vocabulary (one object, the five basic motions), in every
    language: the drawing the base model was trained to make, where its own clips are right only as often as it is."""
    spec = dataclasses.replace(EASY, shapes=SHAPES, frames=frames, height=size, width=size)
    _write_world_clips(out, "prior", PRIOR_SEED, count, spec, LANGUAGES, fps)


def write_preserve_prompts(path: Path, count: int) -> None:
    """`count` captions of the old vocabulary (one object, the five basic motions, training sentence frames), the
    twelve languages in turn, one per line."""
    lines = [captioned_scene(PRESERVE_SEED + i, dataclasses.replace(EASY, shapes=SHAPES), LANGUAGES[i % len(LANGUAGES)])[2]
             for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write the clips and captions into")
    p.add_argument("--stars", type=int, default=48, help="number of star clips")
    p.add_argument("--languages", nargs="+", default=["en", "fr", "zh"], choices=LANGUAGES)
    p.add_argument("--sizes", nargs="+", default=["normal"], choices=["small", "normal", "large"],
                   help="star sizes (the 64 px VAE keeps the points of large stars better)")
    p.add_argument("--prior", type=int, default=0, help="number of clips of the old vocabulary (0 = none)")
    p.add_argument("--prior-source", choices=["model", "world"], default="model",
                   help="model: the base model generates them; world: the synthetic world renders them")
    p.add_argument("--model", help="the base model for --prior (default: the embedded aiprod-v2-tiny)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps of the prior clips")
    p.add_argument("--preserve-prompts", metavar="FILE", help="also write prompts of the old vocabulary here, one per "
                   "line, for `aiprod train --preserve-prompts` (keep it outside --out: that folder is read as clips)")
    p.add_argument("--preserve-count", type=int, default=512, help="number of prompts for --preserve-prompts")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_star_clips(out, args.stars, tuple(args.languages), tuple(args.sizes))
    if args.prior and args.prior_source == "world":
        write_world_prior_clips(out, args.prior)
    elif args.prior:
        write_prior_clips(out, load_model(args.model), args.prior, steps=args.steps)
    print(f"wrote {args.stars} star clips and {args.prior} prior clips to {out}")
    if args.preserve_prompts:
        write_preserve_prompts(Path(args.preserve_prompts), args.preserve_count)
        print(f"wrote {args.preserve_count} prompts of the old vocabulary to {args.preserve_prompts}")


if __name__ == "__main__":
    main()
