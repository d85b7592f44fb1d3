"""LTX-2 19B's video transformer against its AIPROD hybrid (30 attention and 18 conv blocks, `AACAACAC` six times) at
768x512x121: seconds per forward of each, side by side in one run, on random weights. JSON to --out.

    python bench/ltx2_hybrid_speed.py --out ltx2_hybrid_speed.json           # CUDA: both models resident (~70 GB)
    python bench/ltx2_hybrid_speed.py --device cpu --tiny --out smoke.json   # the same code at a tiny shape

Both are made block by block in bf16 from the meta device (bench/ltx2_gpu_memory.py's `random_transformer`) and
run whole on the device, with no streaming: the ratio is the blocks' own cost. Each is timed in turn, `--repeats`
times after a warm-up, and the medians compared.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aiprod_core.families.ltx2.config import LTX2TransformerConfig  # noqa: E402
from aiprod_core.families.ltx2.model import LTX2Geometry  # noqa: E402
from aiprod_core.families.ltx2.vae_config import LTX2_VIDEO_VAE, LTX2VAEConfig  # noqa: E402
from bench.ltx2_gpu_memory import (  # noqa: E402
    TINY,
    bench_parser,
    device_and_clip,
    measured,
    random_transformer,
    write_json,
)

HYBRID = "AACAACAC" * 6  # the base preset's mix over LTX-2's 48 blocks
TINY_HYBRID = "AACA"


def run(device: torch.device, tiny: bool, clip: tuple[int, int, int], repeats: int) -> dict:
    cfg = TINY if tiny else LTX2TransformerConfig()
    _, *grid = LTX2Geometry.of(LTX2VAEConfig.from_dict(LTX2_VIDEO_VAE)).latent_shape(*clip)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, cfg.in_channels, *grid, generator=g).to(device, torch.bfloat16)
    sigma = torch.full((1,), 0.7, device=device)
    ctx = torch.randn(1, 32 if tiny else 1024, cfg.caption_channels, generator=g).to(device, torch.bfloat16)
    out = {"bench": "ltx2_hybrid_speed", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "clip": list(clip), "tokens": grid[0] * grid[1] * grid[2], "models": {}}
    for name, pattern in (("all_attention", None), ("hybrid", TINY_HYBRID if tiny else HYBRID)):
        model = random_transformer(dataclasses.replace(cfg, pattern=pattern), torch.bfloat16).to(device)
        params = sum(p.numel() for p in model.parameters())

        def forward(model=model):
            with torch.no_grad():
                return model(x, sigma, ctx)

        timed, _ = measured(forward, device, repeats, None)
        out["models"][name] = {"pattern": model.cfg.block_kinds, "params_b": round(params / 1e9, 3),
                               "s_per_forward": timed["s_per_step"]}
        del model, forward  # the next model is made after this one's memory is free
        if device.type == "cuda":
            torch.cuda.empty_cache()
    a, h = out["models"]["all_attention"]["s_per_forward"], out["models"]["hybrid"]["s_per_forward"]
    out["hybrid_speedup"] = round(a / h, 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = bench_parser(__doc__, repeats=3).parse_args(argv)
    device, clip = device_and_clip(args)
    return write_json(run(device, args.tiny, clip, args.repeats), args.out)


if __name__ == "__main__":
    main()
