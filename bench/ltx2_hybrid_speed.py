"""LTX-2 19B's video transformer against its AIPROD hybrid (30 attention and 18 conv blocks, `AACAACAC` six times) at
768x512x121: seconds per forward of each, side by side in one run, on random weights. JSON to --out.

    python bench/ltx2_hybrid_speed.py --out ltx2_hybrid_speed.json           # CUDA: both models resident (~70 GB)
    python bench/ltx2_hybrid_speed.py --device cpu --tiny --out smoke.json   # the same code at a tiny shape

Both are made block by block in bf16 from the meta device (bench/ltx2_gpu_memory.py's `random_transformer`) and
run whole on the device, with no streaming: the ratio is the blocks' own cost. Each is timed in turn, `--repeats`
times after a warm-up, and the medians compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aiprod_core.families.ltx2.config import LTX2TransformerConfig  # noqa: E402
from bench.ltx2_gpu_memory import TINY, random_transformer  # noqa: E402

HYBRID = "AACAACAC" * 6  # the base preset's mix over LTX-2's 48 blocks
TINY_HYBRID = "AACA"


def seconds(model, x, sigma, ctx, device: torch.device, repeats: int) -> float:
    with torch.no_grad():
        model(x, sigma, ctx)  # warm-up
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x, sigma, ctx)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(device: torch.device, tiny: bool, clip: tuple[int, int, int], repeats: int) -> dict:
    cfg = TINY if tiny else LTX2TransformerConfig()
    frames, height, width = clip
    grid = (1 + (frames - 1) // 8, height // 32, width // 32)  # LTX-2's VAE: 8x in time, 32x in space
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, cfg.in_channels, *grid, generator=g).to(device, torch.bfloat16)
    sigma = torch.full((1,), 0.7, device=device)
    ctx = torch.randn(1, 32 if tiny else 1024, cfg.caption_channels, generator=g).to(device, torch.bfloat16)
    out = {"bench": "ltx2_hybrid_speed", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "clip": list(clip), "tokens": grid[0] * grid[1] * grid[2], "models": {}}
    for name, pattern in (("all_attention", None), ("hybrid", TINY_HYBRID if tiny else HYBRID)):
        model = random_transformer(dataclasses.replace(cfg, pattern=pattern), torch.bfloat16).to(device)
        params = sum(p.numel() for p in model.parameters())
        out["models"][name] = {"pattern": model.cfg.block_kinds, "params_b": round(params / 1e9, 3),
                               "s_per_forward": round(seconds(model, x, sigma, ctx, device, repeats), 4)}
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    a, h = out["models"]["all_attention"]["s_per_forward"], out["models"]["hybrid"]["s_per_forward"]
    out["hybrid_speedup"] = round(a / h, 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true", help="a tiny transformer of LTX-2's structure (the smoke path)")
    ap.add_argument("--clip", default=None, help="FxHxW (default 121x512x768; tiny: 9x64x64)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or use --device cpu --tiny for a smoke run")
    clip = tuple(int(v) for v in (args.clip or ("9x64x64" if args.tiny else "121x512x768")).split("x"))
    out = run(torch.device(args.device), args.tiny, clip, args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
