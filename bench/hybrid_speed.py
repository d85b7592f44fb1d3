"""Seconds per sampling step of an AIPROD backbone and its hybrid students, side by side in one run (CPU).

One guided step is one backbone forward of batch 2 (the conditional and the unconditional pass), as the sampler
runs it. The models share the config of `--model` (default: the shipped aiprod-v2-tiny) and differ only in their
block pattern: the teacher's all-attention one and each `--patterns` entry. Weights are random (speed does not
depend on them). Models take turns within each round (bench/backbone.py's `time_round_robin`), and the JSON gives
each one's median and its speed-up over all-attention, the median of per-round ratios.

    python bench/hybrid_speed.py --grids 5x8x8 9x16x16 9x24x24 --patterns ACACAC ACCCAC --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aiprod_core.info import model_config  # noqa: E402
from aiprod_core.models.backbone import HybridBackbone  # noqa: E402
from bench.backbone import median_ratio, parse_grid, time_round_robin  # noqa: E402


def run(config, grids, patterns, threads: int, warmup: int, repeats: int, text_len: int = 32) -> dict:
    torch.set_num_threads(threads)
    cfg = config.backbone
    teacher = "A" * len(cfg.pattern)
    names = {"all_attention": teacher, **{f"hybrid_{p}": p for p in patterns}}
    models = {}
    for name, pattern in names.items():
        torch.manual_seed(0)
        models[name] = HybridBackbone(dataclasses.replace(cfg, pattern=pattern)).eval()
    out = {"bench": "hybrid_speed", "threads": threads, "torch": torch.__version__, "width": cfg.width,
           "patterns": names, "grids": {}}
    g = torch.Generator().manual_seed(1)
    for grid in grids:
        x = torch.randn(2, cfg.in_channels, *grid, generator=g)
        sigma = torch.full((2,), 0.7)
        ctx = torch.randn(2, text_len, cfg.text_dim, generator=g)
        mask = torch.ones(2, text_len, dtype=torch.bool)

        def step(model, inputs=(x, sigma, ctx, mask)):
            def run_once():
                with torch.no_grad():
                    model(*inputs)
            return run_once

        times = time_round_robin({n: step(m) for n, m in models.items()}, warmup, repeats)
        row = {"tokens": math.prod(grid)}
        for n in names:
            row[n] = {"s_per_step": round(statistics.median(times[n]), 4)}
            if n != "all_attention":
                row[n]["speedup"] = median_ratio(times["all_attention"], times[n])
        out["grids"]["x".join(map(str, grid))] = row
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a checkpoint whose config the models share (default: the shipped model)")
    ap.add_argument("--grids", nargs="+", type=parse_grid, default=[parse_grid(g) for g in ("5x8x8", "9x16x16")],
                    help="latent grids TxHxW (the shipped clip, 64x64x17, is 5x8x8: 320 tokens; 9x16x16 is 2,304)")
    ap.add_argument("--patterns", nargs="+", default=["ACACAC", "ACCCAC"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    config = model_config(args.model)
    out = run(config, args.grids, args.patterns, args.threads, args.warmup, args.repeats)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
