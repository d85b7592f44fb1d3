"""Hybridizing LTX-2 19B into its 30 attention + 18 conv hybrid at 768x512x121 under the placement plan for a GPU
budget: the measured peak against the plan's, and seconds per step of each stage. JSON to --out.

    python bench/ltx2_hybridize_memory.py --vram 24 --out hybridize24.json     # CUDA (host: ~60 GB of RAM)
    python bench/ltx2_hybridize_memory.py --vram 8 --out hybridize8.json
    python bench/ltx2_hybridize_memory.py --device cpu --tiny --out smoke.json   # the same code at a tiny shape

It runs `aiprod hybridize`'s own loop (train.hybridize.Hybridizer) on a random teacher (bench/ltx2_gpu_memory.py's
`random_transformer`, bf16) and random clips, so no file, Gemma or VAE is needed: `--steps` steps of each stage for
every group the plan makes, the run stopped before the student is written. Seconds per step are the median gaps
between logged steps (every step is logged), so they include the velocity error measured after each.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aiprod_core.families.ltx2.config import LTX2TransformerConfig  # noqa: E402
from aiprod_core.families.ltx2.gemma_tokenizer import MAX_LENGTH  # noqa: E402
from aiprod_core.families.ltx2.model import LTX2Geometry, LTX2ModelConfig  # noqa: E402
from aiprod_core.families.ltx2.vae_config import LTX2_VIDEO_VAE, LTX2VAEConfig  # noqa: E402
from aiprod_core.memory.hybridize_plan import fresh_groups, hybridize_placement  # noqa: E402
from aiprod_core.model import LTX2, VideoModel  # noqa: E402
from aiprod_core.train.distil_data import ClipSet  # noqa: E402
from aiprod_core.train.hybridize import HybridizeOptions, Hybridizer, replaced_blocks  # noqa: E402
from aiprod_core.train.options import RunOptions  # noqa: E402
from aiprod_core.train.run import RunFolder  # noqa: E402
from bench.ltx2_gpu_memory import TINY, bench_parser, device_and_clip, gb, random_transformer, write_json  # noqa: E402
from bench.ltx2_hybrid_speed import HYBRID, TINY_HYBRID  # noqa: E402

TINY_VRAM = 0.008  # GB: the tiny teacher's blocks stream in both stages


def random_clips(cfg: LTX2TransformerConfig, grid: tuple[int, int, int], count: int, context: int, seed: int) -> ClipSet:
    g = torch.Generator().manual_seed(seed)
    return ClipSet(torch.randn(count, cfg.in_channels, *grid, generator=g),
                   torch.randn(count, context, cfg.caption_channels, generator=g),
                   torch.ones(count, context, dtype=torch.bool), [""] * count)


def run(device: torch.device, tiny: bool, vram: float | None, clip: tuple[int, int, int], steps: int) -> dict:
    cfg = TINY if tiny else LTX2TransformerConfig()
    pattern = TINY_HYBRID if tiny else HYBRID
    vae = LTX2Geometry.of(LTX2VAEConfig.from_dict(LTX2_VIDEO_VAE))
    config = LTX2ModelConfig(name="ltx-2-19b-dev" if not tiny else "ltx-2-tiny", transformer=cfg, vae=vae,
                             frames=clip[0], height=clip[1], width=clip[2])
    vram = vram or (TINY_VRAM if tiny else 24.0)
    placement, group = hybridize_placement(config, pattern, clip, 1, device, vram_gb=vram, compute=torch.bfloat16)
    t0 = time.perf_counter()
    teacher = VideoModel(config, random_transformer(cfg, torch.bfloat16), None, None, None, "random weights", False,
                         family=LTX2)
    built = time.perf_counter() - t0
    _, *grid = vae.latent_shape(*clip)
    context = 32 if tiny else MAX_LENGTH
    clips = {"train": random_clips(cfg, tuple(grid), 2, context, 1), "heldout": random_clips(cfg, tuple(grid), 1, context, 2)}
    out_dir = Path(tempfile.mkdtemp(prefix="hybridize-bench-"))
    groups = len(fresh_groups(replaced_blocks(cfg.block_kinds, pattern), group))
    opts = HybridizeOptions(RunOptions(out_dir, name="bench", log_every=1, checkpoint_every=0, progress=False,
                                       stop_after=2 * steps * groups),
                            pattern, steps_blockwise=steps, steps_end_to_end=steps, batch=1, heldout=1,
                            group=group, placement=placement)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    hybridizer = Hybridizer(teacher, opts)
    hybridizer.run(clips=clips)
    rows = RunFolder(out_dir).log_rows()
    plan = placement.plan.to_dict()
    out = {"bench": "ltx2_hybridize_memory", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "weights": "random, bf16", "pattern": pattern, "clip": list(clip),
           "vram_budget_gb": vram, "group": group, "groups": groups, "build_s": round(built, 1),
           "plan": plan, "stages": {}}
    for stage in ("blockwise", "end_to_end"):
        times = [r["time"] for r in rows if r.get("stage") == stage]
        gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
        out["stages"][stage] = {"s_per_step": round(statistics.median(gaps), 3) if gaps else None,
                                "velocity_error": [round(r["velocity_error"], 5) for r in rows
                                                   if r.get("stage") == stage]}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        out["peak_allocated_gb"] = gb(peak)
        out["peak_reserved_gb"] = gb(torch.cuda.max_memory_reserved(device))
        out["allocated_over_plan"] = round(peak / placement.peak_bytes, 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = bench_parser(__doc__, repeats=1)
    ap.add_argument("--vram", type=float, default=None, help="budget planned for, GB (default 24; tiny: a streaming one)")
    ap.add_argument("--steps", type=int, default=3, help="steps of each stage per group (default 3)")
    args = ap.parse_args(argv)
    device, clip = device_and_clip(args)
    return write_json(run(device, args.tiny, args.vram, clip, args.steps), args.out)


if __name__ == "__main__":
    main()
