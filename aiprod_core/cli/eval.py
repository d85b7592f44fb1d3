"""`aiprod eval`: check a trained model: prompt adherence, the latent upscaler, motion guidance and image-to-video."""

from __future__ import annotations

import argparse
import json
import shlex

from ..world import LANGUAGES
from .args import (
    add_json_arg,
    add_model_args,
    add_motion_args,
    add_precision_arg,
    add_quiet_arg,
    load_for_inference,
    motion,
)
from .checks import RequestError, check_model, check_number

SHAPES = ["circle", "square", "triangle", "star"]
# probes of what a model reads, which explain research figures rather than check a model: not installed any more
MOVED = {"reliance": "research.probes.reliance", "words": "research.probes.words"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="measure a model")
    esub = e.add_subparsers(dest="what", required=True)
    _add_adherence(esub)
    u = esub.add_parser("upscale", help="PSNR of the 2x latent upscaler vs bicubic, against the world's 2x render")
    add_model_args(u)
    add_precision_arg(u)
    u.add_argument("--clips", type=int, default=16)
    u.add_argument("--seed", type=int, default=0)
    u.set_defaults(func=run, check=check)

    m = _add_clip_set(esub, "motion", "3 ways", "motion guidance: flow error and direction, guided vs unguided vs "
                                                "random (JSON)")
    m.add_argument("--presets", help="comma-separated camera presets (default: all eight)")
    m.add_argument("--camera-speed", type=float, default=1.0, help="pace of the camera presets (1 = the default)")
    _add_clip_set(esub, "i2v", "both ways", "image-to-video: first frame kept, prompt and camera followed, text alone vs "
                                            "text + the first frame (JSON)")
    esub.metavar = "{" + ",".join(esub.choices) + "}"  # the moved probes below stay out of the list
    for name in MOVED:  # for one release, they say where the probe went, whatever their arguments
        moved = esub.add_parser(name, prefix_chars="\0", add_help=False)  # no options: "--json" is an argument too
        moved.add_argument("rest", nargs="*")
        moved.set_defaults(func=run, check=check)


def _add_adherence(esub: argparse._SubParsersAction) -> None:
    a = esub.add_parser("adherence", help="prompt adherence on held-out caption frames in every language")
    add_model_args(a)
    add_precision_arg(a)
    a.add_argument("--per-language", type=int, default=8, help="clips per language")
    a.add_argument("--steps", type=int, default=20)
    a.add_argument("--cfg", type=float, default=3.0)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--frames", "--split", dest="split", default="heldout", choices=["heldout", "train", "plain"],
                   help="caption frames: sentence frames held out of training (default), those training used, or "
                        "plain prompts as typed (\"red circle, moving left\"), also kept out of training")
    a.add_argument("--shapes", nargs="+", default=["circle", "square", "triangle"],
                   choices=SHAPES, help="the shapes the prompts ask for")
    a.add_argument("--sizes", nargs="+", default=["normal"], choices=["small", "normal", "large"],
                   help="object sizes of the prompts' scenes")
    a.add_argument("--candidates", nargs="+", choices=SHAPES,
                   help="the shapes the classifier may answer (default: the world's three and any of --shapes; "
                        "with --lora: all four), e.g. all four to count an old shape drawn as a star as wrong")
    a.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES, metavar="LANG",
                   help=f"the prompts' languages (default: all twelve: {' '.join(LANGUAGES)})")
    a.add_argument("--lora", help="a LoRA file: score the same prompts without and with it, in one run")
    a.add_argument("--lora-strength", type=float, default=1.0)
    add_json_arg(a)
    add_quiet_arg(a)
    a.set_defaults(func=run, check=check)


def _add_clip_set(esub: argparse._SubParsersAction, name: str, ways: str, text: str) -> argparse.ArgumentParser:
    """An eval of world clips and camera-preset clips, each generated several ways (JSON)."""
    e = esub.add_parser(name, help=text)
    add_model_args(e)
    add_precision_arg(e)
    e.add_argument("--clips", type=int, default=16, help=f"world clips (each generated {ways})")
    e.add_argument("--per-preset", type=int, default=2, help=f"clips per camera preset (each generated {ways})")
    e.add_argument("--steps", type=int, default=20)
    e.add_argument("--cfg", type=float, default=3.0)
    e.add_argument("--seed", type=int, default=0)
    add_motion_args(e)
    add_json_arg(e, "print JSON (always on)")
    add_quiet_arg(e)
    e.set_defaults(func=run, check=check)
    return e


def check(args: argparse.Namespace) -> list[str]:
    if args.what in MOVED:
        raise RequestError(f"{args.what} is a research probe and no longer part of the installed command; from a "
                           f"clone of the repository run: python -m {MOVED[args.what]} {shlex.join(args.rest)}".rstrip())
    check_model(args.model)
    check_number("--steps", getattr(args, "steps", None), 1)
    check_number("--cfg", getattr(args, "cfg", None), 0)
    return []


def run(args: argparse.Namespace) -> int:
    model = load_for_inference(args, "none")  # the evals run on the CPU: "auto" precision is float32 there
    return {"motion": _motion, "i2v": _image_to_video, "upscale": _upscale, "adherence": _adherence}[args.what](args, model)


# Each eval's module is imported when it runs (start-up time: see args.load_for_inference).

def _motion(args: argparse.Namespace, model) -> int:
    from ..eval.motion import motion_adherence

    result = motion_adherence(model, clips=args.clips, per_preset=args.per_preset, steps=args.steps, cfg=args.cfg,
                              seed=args.seed, motion=motion(args), camera_speed=args.camera_speed,
                              **({"presets": tuple(args.presets.split(","))} if args.presets else {}), progress=not args.quiet)
    print(json.dumps(result, indent=2))
    return 0


def _image_to_video(args: argparse.Namespace, model) -> int:
    from ..eval.image_to_video import image_to_video_adherence

    result = image_to_video_adherence(model, clips=args.clips, per_preset=args.per_preset, steps=args.steps,
                                      cfg=args.cfg, seed=args.seed, progress=not args.quiet, motion=motion(args))
    print(json.dumps(result, indent=2))
    return 0


def _upscale(args: argparse.Namespace, model) -> int:
    from ..eval.upscale import upscaler_vs_bicubic

    print(json.dumps(upscaler_vs_bicubic(model, clips=args.clips, seed=args.seed), indent=2))
    return 0


def _adherence(args: argparse.Namespace, model) -> int:
    from ..eval.adherence import lora_adherence, prompt_adherence
    from ..models.lora import read_lora

    kw = dict(per_language=args.per_language, steps=args.steps, cfg=args.cfg, seed=args.seed, split=args.split,
              shapes=tuple(args.shapes), sizes=tuple(args.sizes), languages=tuple(args.languages), progress=not args.quiet)
    if args.candidates:
        kw["candidates"] = tuple(args.candidates)
    if args.lora:
        lora, text_lora = read_lora(args.lora, model.backbone, model.text_encoder)
        result = lora_adherence(model, lora, args.lora_strength, name=args.lora, text_lora=text_lora, **kw)
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
            return 0
        for arm in ("without_lora", "with_lora"):
            print(f"{arm:24s} " + "  ".join(f"{k} {v:.2f}" for k, v in result[arm]["generated"].items()))
        print(f"{'change':24s} " + "  ".join(f"{k} {v:+.2f}" for k, v in result["change"].items()))
        return 0
    result = prompt_adherence(model, **kw)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    for name in ("generated", "floor_shuffled_prompts", "ceiling_world_clips", "ceiling_through_vae", "worst_language"):
        print(f"{name:24s} " + "  ".join(f"{k} {v:.2f}" for k, v in result[name].items()))
    print(f"{'objects drawn':24s} " + "  ".join(f"{k} {v:.2f}" for k, v in result["objects_drawn"]["generated"].items()))
    for lang, s in result["per_language"].items():
        print(f"  {lang}  " + "  ".join(f"{k} {v:.2f}" for k, v in s.items()))
    return 0
