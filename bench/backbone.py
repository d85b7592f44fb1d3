"""Backbone speed: hybrid (A+C) vs all-attention, and ours vs diffusers' LTXVideoTransformer3DModel.

Times one training step (forward + backward of an MSE loss) at batch 1, fp32, on the CPU with a fixed
thread count, for several latent grids, and prints one JSON object. Every model has the same width,
depth, heads, latent channels and caption width; the MLP of ours is SwiGLU with mlp_ratio 8/3, which has
about the parameters and FLOPs of diffusers' GELU MLP with ratio 4 (parameter counts are in the JSON).

    python bench/backbone.py                 # full run, a few minutes on 2 cores
    python bench/backbone.py --grids 5x8x8   # one grid

diffusers is optional: without it the comparison is skipped and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from aiprod_core.config import BackboneConfig, preset
from aiprod_core.models.backbone import HybridBackbone

DEFAULT_GRIDS = ("5x8x8", "5x16x16", "9x16x16", "9x24x24")


def parse_grid(s: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in s.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"grid {s!r} is not TxHxW, e.g. 9x16x16") from e
    return t, h, w


def time_round_robin(
    steps: dict[str, Callable[[], None]], warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds of each step over `repeats` rounds after `warmup` untimed ones.

    Models take turns within a round, so a load spike on a shared machine hits all of them alike.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return times


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median of per-round ratios: robust to a slow round that hits both models."""
    return round(statistics.median(a / b for a, b in zip(num, den, strict=True)), 3)


def ours_step(model: HybridBackbone, x: torch.Tensor, sigma, ctx, mask) -> Callable[[], None]:
    target = torch.randn_like(x)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss = (model(x, sigma, ctx, mask) - target).pow(2).mean()
        loss.backward()

    return step


def diffusers_step(model: nn.Module, x: torch.Tensor, sigma, ctx, mask) -> Callable[[], None]:
    t, h, w = x.shape[2:]
    tokens = x.flatten(2).transpose(1, 2).contiguous()  # diffusers takes (B, N, C) tokens
    target = torch.randn_like(tokens)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        out = model(
            hidden_states=tokens,
            encoder_hidden_states=ctx,
            timestep=sigma * 1000,
            encoder_attention_mask=mask.float(),
            num_frames=t,
            height=h,
            width=w,
            # fractional positions (p / max_pos), as ours use
            rope_interpolation_scale=(1.0, 1.0, 1.0),
            return_dict=False,
        )[0]
        (out - target).pow(2).mean().backward()

    return step


def build_diffusers(cfg: BackboneConfig) -> nn.Module | None:
    try:
        from diffusers import LTXVideoTransformer3DModel
    except ImportError:
        return None
    return LTXVideoTransformer3DModel(
        in_channels=cfg.in_channels,
        out_channels=cfg.in_channels,
        num_attention_heads=cfg.heads,
        attention_head_dim=cfg.head_dim,
        cross_attention_dim=cfg.width,  # LTX attends to the caption after projecting it to the width
        num_layers=len(cfg.pattern),
        caption_channels=cfg.text_dim,
    )


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grids", nargs="+", type=parse_grid, default=[parse_grid(g) for g in DEFAULT_GRIDS])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--channels", type=int, default=128, help="latent channels (LTX: 128)")
    ap.add_argument("--text-dim", type=int, default=512)
    ap.add_argument("--text-len", type=int, default=128)
    ap.add_argument(
        "--hybrid",
        nargs="+",
        default=["AC", "base"],
        help="hybrid patterns: a unit repeated to --depth blocks, or 'base' for the first --depth blocks "
        "of the base preset (AACAACAC: 5 A + 3 C, its 30:18 ratio)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-diffusers", action="store_true")
    return ap.parse_args()


def backbone_config(args: argparse.Namespace, pattern: str) -> BackboneConfig:
    """The compared models' shared sizes, with a block pattern of their own."""
    return BackboneConfig(
        in_channels=args.channels,
        width=args.width,
        heads=args.heads,
        pattern=pattern,
        mlp_ratio=8 / 3,
        text_dim=args.text_dim,
    )


def build_models(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, nn.Module], str]:
    """(patterns, models, diffusers note): all-attention and each hybrid pattern of ours, and diffusers' LTX
    transformer beside them when it is installed and not turned off."""
    attn_cfg = backbone_config(args, "A" * args.depth)
    patterns = {"attention": attn_cfg.pattern}
    for unit in args.hybrid:
        pattern = preset("base").backbone.pattern if unit == "base" else unit * args.depth
        patterns[f"hybrid_{unit}"] = pattern[: args.depth]
    models: dict[str, nn.Module] = {name: HybridBackbone(backbone_config(args, p)).train() for name, p in patterns.items()}
    for m in models.values():
        nn.init.normal_(m.proj_out.weight, std=0.02)  # non-zero head so every gradient path is exercised

    if args.no_diffusers:
        return patterns, models, "skipped (--no-diffusers)"
    dm = build_diffusers(attn_cfg)
    if dm is None:
        return patterns, models, "diffusers is not installed; `pip install diffusers` to compare with LTX-Video"
    import diffusers

    models["diffusers_ltx"] = dm.train()
    return patterns, models, f"diffusers {diffusers.__version__} LTXVideoTransformer3DModel, SDPA"


def time_grid(args: argparse.Namespace, grid: tuple[int, int, int], patterns: dict[str, str],
              models: dict[str, nn.Module]) -> dict[str, object]:
    """One result row: every model's step time on a latent grid (t, h, w), and all-attention's over the others'."""
    t, h, w = grid
    x = torch.randn(1, args.channels, t, h, w)
    sigma = torch.tensor([0.7])
    ctx = torch.randn(1, args.text_len, args.text_dim)
    mask = torch.zeros(1, args.text_len, dtype=torch.bool)
    mask[:, : args.text_len * 3 // 4] = True  # a padded prompt, as in real use
    row: dict[str, object] = {"grid": f"{t}x{h}x{w}", "tokens": t * h * w}
    steps = {
        name: (diffusers_step if name == "diffusers_ltx" else ours_step)(m, x, sigma, ctx, mask)
        for name, m in models.items()
    }
    times = time_round_robin(steps, args.warmup, args.repeats)
    for name, ts in times.items():
        row[f"{name}_s"] = round(statistics.median(ts), 4)
        row[f"{name}_min_s"] = round(min(ts), 4)
    pairs = [(f"attention_over_{n}", "attention", n) for n in patterns if n.startswith("hybrid_")]
    if "diffusers_ltx" in times:
        pairs.append(("ours_attention_over_diffusers", "attention", "diffusers_ltx"))
    for key, num, den in pairs:
        row[key] = median_ratio(times[num], times[den])
        # the fastest round is the one least disturbed by other load on a shared machine
        row[f"{key}_from_min"] = round(min(times[num]) / min(times[den]), 3)
    return row


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    patterns, models, diffusers_note = build_models(args)
    results = [time_grid(args, grid, patterns, models) for grid in args.grids]
    report = {
        "bench": "backbone fwd+bwd seconds per step: median and min over rounds; ratios: median of per-round ratios, and ratio of minima",
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "dtype": "float32",
        "batch": 1,
        "width": args.width,
        "heads": args.heads,
        "depth": args.depth,
        "latent_channels": args.channels,
        "text": {"len": args.text_len, "dim": args.text_dim, "valid": args.text_len * 3 // 4},
        "warmup": args.warmup,
        "repeats": args.repeats,
        "patterns": patterns,
        "params": {name: n_params(m) for name, m in models.items()},
        "diffusers": diffusers_note,
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
