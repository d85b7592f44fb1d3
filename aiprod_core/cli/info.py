"""`aiprod info`: what a model is made of, and with --plan, where each stage's memory goes inside --vram."""

from __future__ import annotations

import argparse
import json

from .args import (
    FILE_FLAGS,
    add_clip_args,
    add_family_file_args,
    add_json_arg,
    add_memory_args,
    add_model_args,
    family_files,
)
from .checks import check_model, check_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("info", help="parameter counts, block counts and latent size of a model")
    add_model_args(i)
    add_family_file_args(i)
    add_clip_args(i)
    add_json_arg(i)
    i.add_argument("--plan", action="store_true", help="plan GPU memory per stage for the clip inside --vram")
    i.add_argument("--upscale", action="store_true", help="with --plan: decode the 2x upscaled clip")
    i.add_argument("--lora-rank", type=int, default=16, help="with --plan: LoRA rank of the training stage")
    add_memory_args(i, default_vram=8.0, dtypes=("bf16", "fp16", "fp32", "fp8"))
    i.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    check_model(args.model)
    for name in ("frames", "height", "width"):
        check_number(f"--{name}", getattr(args, name), 1)
    check_number("--vram", args.vram, 0, above=True)
    from ..info import model_config  # imported when the command runs: see args.load_for_inference

    model_config(args.model, args.preset, names=FILE_FLAGS, **family_files(args))  # each file in its slot
    return []


def run(args: argparse.Namespace) -> int:
    # Imported when the command runs (start-up time: see args.load_for_inference).
    from ..info import model_info

    if args.plan:
        return _print_plan(args)
    info = model_info(model=args.model, preset_name=args.preset, frames=args.frames, height=args.height, width=args.width,
                      names=FILE_FLAGS, **family_files(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']} ({info['source']})" + (f", family {info['family']}" if "family" in info else ""))
    for name, c in info["components"].items():
        extra = ", ".join(f"{k}={v}" for k, v in c.items() if k != "params")
        print(f"  {name:15s} {c['params'] / 1e6:10.2f} M params  {extra}")
    if "file_components" in info:
        print(f"  in {info['source']}: {', '.join(info['file_components'])}; {info['audio_params_skipped'] / 1e6:.2f} M "
              "audio parameters not loaded (video only)")
    if "distilled" in info:
        print(f"  {_sampling_line(info)}")
    clip = info["clip"]
    print(f"  clip {clip['frames']}x{clip['height']}x{clip['width']} -> latent {clip['latent_shape']}, {clip['tokens']} tokens")
    return 0


def _sampling_line(info: dict) -> str:
    """An LTX-2 model's sampling defaults in words: distilled or dev, and what generate uses without --steps/--cfg."""
    from ..sampling.ltx2_schedule import DISTILLED_SIGMAS

    if info["distilled"]:
        sigmas = ", ".join(f"{s:g}" for s in DISTILLED_SIGMAS)
        return (f"distilled: samples its {len(DISTILLED_SIGMAS) - 1} distilled sigmas ({sigmas}) without guidance "
                "(cfg 1) unless --steps/--cfg say otherwise (aiprod generate --distilled no if it is not)")
    return ("dev (not distilled): 20 steps of LTX-2's token-shift schedule and cfg 3 unless --steps/--cfg say "
            "otherwise (aiprod generate --distilled yes for a distilled file named otherwise)")


def _print_plan(args: argparse.Namespace) -> int:
    from ..info import model_config
    from ..memory.placement import Placement

    # a GPU with --vram GB, bf16 compute, 1 GB kept free: what the stages of a run there would be given
    config = model_config(args.model, args.preset, names=FILE_FLAGS, **family_files(args))
    placement = Placement.build(config, (args.frames, args.height, args.width), "cuda",
                                vram_gb=args.vram, compute="bf16", weight_dtype=args.weight_dtype or "auto",
                                upscale=args.upscale, lora_rank=args.lora_rank, reserve_gb=1.0)
    d = placement.plan.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    clip = d["clip"]
    print(f"{d['model']}: {clip['width']}x{clip['height']}x{clip['frames']} in {d['budget_gb']:g} GB "
          f"({d['usable_gb']:g} GB usable); peaks are planner estimates")
    for name, s in d["stages"].items():
        peak = f"{s['peak_gb']:5.2f} GB" if "peak_gb" in s else "    -   "
        what = _stage_layout(s)
        print(f"  {name:14s} {s['where']:4s} {peak}  {what}{'; ' if what else ''}{s['note']}")
    return 0


def _stage_layout(s: dict) -> str:
    """One stage of the plan in words: blocks resident and streamed, or the VAE's chunks and tiles."""
    if "blocks_resident" in s:
        return (f"{s['blocks_resident']} blocks resident, {s['blocks_streamed']} streamed (prefetch {s['prefetch']}), "
                f"{s['weight_dtype']} weights, {s['tokens']} tokens, attention "
                + (f"in chunks of {s['attention_chunk']} queries" if s["attention_chunk"] else "unchunked"))
    if "vae_temporal_chunk" in s:
        return (f"{s['vae_temporal_chunk'] or 'all'} latent frames at a time, "
                + (f"tiles of {s['vae_spatial_tile']} latent px" if s["vae_spatial_tile"] else "whole frames"))
    return ""
