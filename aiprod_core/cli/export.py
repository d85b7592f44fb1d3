"""`aiprod export`: re-save a model checkpoint at another precision, or averaged with the model it was tuned from."""

from __future__ import annotations

import argparse
import os

from ..checkpoint import check_safetensors
from ..outputs import check_output_file
from .checks import SAFETENSORS, RequestError, check_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser("export", help="re-save a model checkpoint at another precision (fp16 halves the file)")
    x.add_argument("model", help="an all-in-one .safetensors checkpoint")
    x.add_argument("-o", "--output", required=True)
    x.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    x.add_argument("--average-with", metavar="BASE", help="write the weighted average of the model's weights and "
                   "BASE's (the checkpoint it was fine-tuned from, the same config): a fine-tune keeps what it "
                   "learned while the average keeps more of what BASE did (WiSE-FT)")
    x.add_argument("--share", type=float, default=0.5,
                   help="with --average-with: the fine-tuned model's share of the average, 0..1 (default 0.5)")
    x.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    check_safetensors(args.model, "the model")
    if args.average_with is not None:
        check_safetensors(args.average_with, "--average-with")
    check_number("--share", args.share, 0, 1, hint="the fine-tuned model's share of the average")
    check_output_file(args.output, SAFETENSORS, "-o")
    return []


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_checkpoint, save_checkpoint

    require = ("backbone", "vae", "text_encoder")
    config, parts = load_checkpoint(args.model, require=require)
    meta = {"aiprod.exported_from": os.path.basename(args.model)}
    if args.average_with is not None:
        base_config, base = load_checkpoint(args.average_with, require=require)
        parts = _average(parts, base, args.share, args.average_with, config == base_config)
        meta["aiprod.averaged_with"] = f"{os.path.basename(args.average_with)}, share {args.share:g}"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    save_checkpoint(args.output, config, parts, meta, dtype=dtype)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB, {args.dtype})")
    return 0


def _average(parts: dict, base: dict, share: float, base_path: str, same_config: bool) -> dict:
    """share * parts + (1 - share) * base, tensor by tensor in float32 (integer buffers kept from `parts`)."""
    shapes = {(c, k): v.shape for c, sd in parts.items() for k, v in sd.items()}
    base_shapes = {(c, k): v.shape for c, sd in base.items() for k, v in sd.items() if c in parts}
    if not same_config or shapes != base_shapes:
        raise RequestError(f"--average-with {base_path}: its weights do not match the model's (another config or "
                           "another set of components); average a fine-tune with the checkpoint it started from")
    return {c: {k: (share * v.float() + (1 - share) * base[c][k].float()) if v.is_floating_point() else v
                for k, v in sd.items()} for c, sd in parts.items()}
