"""LTX-2 19B's video transformer at its real shape: one sampling step, and one LoRA training step, each streamed as
the 8 GB plan says, with fp8 weights, at 768x512x121; the measured peaks and seconds per step beside the plan's
estimates. JSON to --out.

    python bench/ltx2_gpu_memory.py --out ltx2_gpu_memory.json              # CUDA (host: ~40 GB of RAM)
    python bench/ltx2_gpu_memory.py --device cpu --tiny --out smoke.json    # the same code path at a tiny shape

Weights are random (no downloads; memory and speed do not depend on their values), made block by block in bf16
and stored in fp8 by the streamer, as a `ltx-2-19b-dev-fp8` file's weights are. A step is LTX-2's three guidance
passes (conditional, unconditional, STG with block 29's self-attention skipped), each a forward of batch 1. A
training step is the trainer's: a rank-16 LoRA on the default targets, bf16 autocast, every block checkpointed, the
flow loss's backward and an AdamW step, one clip. On a GPU the peak is the CUDA allocator's max_memory_allocated / max_memory_reserved over the step; on the CPU only the
time is reported (the smoke path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from aiprod_core.families.ltx2.config import LTX2TransformerConfig  # noqa: E402
from aiprod_core.families.ltx2.lora import DEFAULT_LTX2_TARGETS  # noqa: E402
from aiprod_core.families.ltx2.model import LTX2Geometry, LTX2ModelConfig  # noqa: E402
from aiprod_core.families.ltx2.transformer import LTX2VideoTransformer  # noqa: E402
from aiprod_core.families.ltx2.vae_config import LTX2_VIDEO_VAE, LTX2VAEConfig  # noqa: E402
from aiprod_core.memory.placement import Placement  # noqa: E402
from aiprod_core.memory.plan import GiB, plan_memory  # noqa: E402
from aiprod_core.models.lora import LoRA, apply_loras  # noqa: E402

TINY = LTX2TransformerConfig(num_layers=4, num_attention_heads=4, attention_head_dim=32, cross_attention_dim=128,
                             caption_channels=64)
TINY_BUDGETS = {"sampling": 0.004, "lora_training": 0.0086}  # GB: the tiny model's blocks stream in both


def gb(b: float) -> float:
    return round(b / GiB, 3)


def random_transformer(cfg: LTX2TransformerConfig, dtype: torch.dtype) -> LTX2VideoTransformer:
    """Random weights, one module at a time from the meta device, so the host never holds a float32 copy."""
    with torch.device("meta"):
        model = LTX2VideoTransformer(cfg)
    g = torch.Generator().manual_seed(0)
    for module in model.modules():
        if not module._parameters:
            continue
        module.to_empty(device="cpu", recurse=False).to(dtype)
        for name, p in module.named_parameters(recurse=False):
            std = 0.5 if "scale_shift" in name else 0.02
            p.requires_grad_(False).copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).mul_(std))
    return model.eval()


def step_fn(model, x, sigma, ctx, stg_block: int):
    def step():
        with torch.no_grad():
            cond = model(x, sigma, ctx)
            uncond = model(x, sigma, ctx)
            perturbed = model(x, sigma, ctx, skip_self_attention=[stg_block])
        return cond, uncond, perturbed

    return step


def train_step_fn(model, lora, x0, sigma, ctx, optimizer, device: torch.device):
    noise = torch.randn_like(x0)

    def step():
        with apply_loras(model, [(lora, 1.0)]):  # applied through backward: checkpointed blocks re-run through them
            with torch.autocast(device.type, torch.bfloat16):
                s = sigma.view(-1, 1, 1, 1, 1)
                v = model((1 - s) * x0 + s * noise, sigma, ctx)
                loss = (v.float() - (noise - x0)).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def measured(step, device: torch.device, repeats: int, estimate: int | None) -> tuple[dict, torch.Tensor]:
    """Seconds per step (median) and, on a GPU, the allocator's peaks over the timed steps, beside the plan's
    `estimate` (bytes; None: no plan); after a warm-up step (kernels, RoPE tables, the allocator's blocks, the fp8
    copies made)."""
    first = step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    out = {"s_per_step": round(statistics.median(times), 3)}
    if estimate is not None:
        out = {"estimate_gb": gb(estimate), **out}
    if device.type == "cuda":
        out["peak_allocated_gb"] = gb(torch.cuda.max_memory_allocated())
        out["peak_reserved_gb"] = gb(torch.cuda.max_memory_reserved())
        if estimate is not None:
            out["reserved_le_7gb"] = out["peak_reserved_gb"] <= 7.0
            out["allocated_over_estimate"] = round(torch.cuda.max_memory_allocated() / estimate, 3)
    return out, first


def run(device: torch.device, tiny: bool, vram: float | None, clip: tuple[int, int, int], repeats: int) -> dict:
    cfg = TINY if tiny else LTX2TransformerConfig()
    frames, height, width = clip
    vae = LTX2Geometry.of(LTX2VAEConfig.from_dict(LTX2_VIDEO_VAE))
    config = LTX2ModelConfig(name="ltx-2-19b-dev-fp8" if not tiny else "ltx-2-tiny", transformer=cfg, vae=vae)
    # the fp8 file's weights stay fp8 on the device; tiny: budgets under which its blocks stream
    plans = {stage: plan_memory(config, height, width, frames, vram or (TINY_BUDGETS[stage] if tiny else 8.0),
                                weight_dtype="fp8", reserve_gb=0.0 if tiny else 1.0, required=(stage,))
             for stage in TINY_BUDGETS}
    t0 = time.perf_counter()
    model = random_transformer(cfg, torch.bfloat16)
    built = time.perf_counter() - t0
    g = torch.Generator().manual_seed(1)
    _, t, h, w = vae.latent_shape(frames, height, width)
    x = torch.randn(1, cfg.in_channels, t, h, w, generator=g).to(device)
    sigma = torch.full((1,), 0.7, device=device)
    ctx = torch.randn(1, 1024 if not tiny else 32, cfg.caption_channels, generator=g).to(device)
    stg = min(29, cfg.num_layers - 1)
    placement = {stage: Placement(device, "auto", plan=plan, compute=torch.bfloat16) for stage, plan in plans.items()}
    out = {"bench": "ltx2_gpu_memory", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "weights": "random, bf16 made, fp8 (e4m3fn) stored", "clip": list(clip),
           "tokens": t * h * w, "vram_budget_gb": vram or 8.0, "build_s": round(built, 1)}
    with placement["sampling"].backbone(model, "sampling"):
        sampling, (v, _, _) = measured(step_fn(model, x, sigma, ctx, stg), device, repeats,
                                       plans["sampling"].stages["sampling"].peak_bytes)
    sampling["s_per_forward"] = round(sampling["s_per_step"] / 3, 3)
    sampling["output_rms"] = float(v.float().pow(2).mean().sqrt())  # > 0: the weights are live
    out["sampling"] = {"plan": plans["sampling"].to_dict()["stages"]["sampling"], **sampling}
    lora = LoRA.create(model, 16, 16.0, DEFAULT_LTX2_TARGETS).to(device)
    optimizer = torch.optim.AdamW(lora.parameters(), lr=1e-4)
    with placement["lora_training"].backbone(model, "lora_training"):  # checkpointing on while blocks stream
        training, loss = measured(train_step_fn(model, lora, x, sigma, ctx, optimizer, device), device, repeats,
                                  plans["lora_training"].stages["lora_training"].peak_bytes)
    training["loss"] = float(loss)
    out["lora_training"] = {"plan": plans["lora_training"].to_dict()["stages"]["lora_training"], **training}
    return out


def bench_parser(doc: str, repeats: int) -> argparse.ArgumentParser:
    """The options the LTX-2 benchmarks share: --out, --device, --tiny, --clip, --repeats."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true", help="a tiny transformer of LTX-2's structure (the smoke path)")
    ap.add_argument("--clip", default=None, help="FxHxW (default 121x512x768; tiny: 9x64x64)")
    ap.add_argument("--repeats", type=int, default=repeats)
    return ap


def device_and_clip(args: argparse.Namespace) -> tuple[torch.device, tuple[int, int, int]]:
    """The device asked for (a CPU run on one thread) and the clip (frames, height, width)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or use --device cpu --tiny for a smoke run")
    if args.device == "cpu":
        torch.set_num_threads(1)
    clip = args.clip or ("9x64x64" if args.tiny else "121x512x768")
    return torch.device(args.device), tuple(int(v) for v in clip.split("x"))


def write_json(out: dict, path: str) -> dict:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = bench_parser(__doc__, repeats=2)
    ap.add_argument("--vram", type=float, default=None, help="budget planned for, GB (default 8; tiny: TINY_BUDGETS)")
    args = ap.parse_args(argv)
    device, clip = device_and_clip(args)
    return write_json(run(device, args.tiny, args.vram, clip, args.repeats), args.out)


if __name__ == "__main__":
    main()
