"""`aiprod export`: re-save a model checkpoint at another precision."""

from __future__ import annotations

import argparse
import os

from ..checkpoint import check_safetensors
from ..outputs import check_output_file
from .checks import SAFETENSORS


def add_parser(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser("export", help="re-save a model checkpoint at another precision (fp16 halves the file)")
    x.add_argument("model", help="an all-in-one .safetensors checkpoint")
    x.add_argument("-o", "--output", required=True)
    x.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    x.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    check_safetensors(args.model, "the model")
    check_output_file(args.output, SAFETENSORS, "-o")
    return []


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_checkpoint, save_checkpoint

    config, parts = load_checkpoint(args.model, require=("backbone", "vae", "text_encoder"))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    save_checkpoint(args.output, config, parts, {"aiprod.exported_from": os.path.basename(args.model)}, dtype=dtype)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB, {args.dtype})")
    return 0
