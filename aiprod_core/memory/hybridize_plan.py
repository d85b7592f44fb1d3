"""The memory plan of `aiprod hybridize` for an LTX-2 teacher: both stages inside a GPU budget, the fresh conv
blocks trained a group at a time.

The teacher's blocks stream as in LoRA training (ltx2_plan.py): frozen, fp8 when the compute dtype does not fit,
each checkpointed in backward. What is new is the fresh blocks' own state. A fresh LTX-2 conv block carries the
released block's MLP (134 M parameters at width 4096) and trains in float32 with AdamW: 16 bytes a parameter
(weights, gradients, two moments), 2.15 GB a block, 39 GB for the 18 blocks of a 30 A + 18 C hybrid. So the fresh
blocks train `group` at a time, the largest group that fits both stages:

- block-wise: one teacher forward of the batch (no gradients, every block streamed) catches each group block's
  input and output; the group's blocks run forward and backward on them;
- end to end: the teacher's velocity for the batch, then the student's forward and backward, every block
  checkpointed; the group's blocks stay on the device (they train) and every other block streams, fresh ones too.

Gemma and the VAE stay off the device: the distillation clips' contexts and latents are made once and kept.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch

from ..families.ltx2.config import LTX2TransformerConfig
from ..families.ltx2.gemma_tokenizer import MAX_LENGTH
from ..families.ltx2.transformer import ConvBlock
from .engine import device_budget_gb, dtype_name
from .ltx2_plan import is_ltx2_config, latent_grid, vae_config_of
from .ltx2_sizes import sampling_activation_bytes, training_activation_bytes, transformer_bytes
from .placement import Placement
from .stages import DTYPE_BYTES, BlockRoom, GiB, MemoryPlan, MemoryPlanError, check_plan_inputs
from .trace import traced_peak

STAGES = ("distil_blockwise", "distil_end_to_end")
FRESH_STATE_BYTES = 16  # a trained parameter: float32 weight, gradient and AdamW's two moments


@lru_cache(maxsize=8)
def fresh_block_params(cfg: LTX2TransformerConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in ConvBlock(cfg).parameters())


@lru_cache(maxsize=16)
def fresh_block_activation_bytes(cfg: LTX2TransformerConfig, grid: tuple[int, int, int], e: int, batch: int) -> int:
    """Peak of one fresh block's forward and backward on a caught input (block-wise distillation), traced."""
    n = math.prod(grid)
    with torch.device("meta"):
        block = ConvBlock(cfg).to(torch.float32 if e == 4 else torch.bfloat16)
        x = torch.empty(batch, n, cfg.width)
        t = torch.empty(batch, 1, cfg.adaln_rows * cfg.width)
        target = torch.empty(batch, n, cfg.width)
    x, t, target = (v.to(block.conv.weight.dtype) for v in (x, t, target))

    def step() -> None:
        (block(x, t, None, None, None, grid=grid) - target).float().pow(2).mean().backward()

    return traced_peak(step, grad=True)


def plan_ltx2_hybridize(config: object, pattern: str, frames: int, height: int, width: int, vram_gb: float, *,
                        batch: int = 1, compute_dtype: str = "bf16", weight_dtype: str = "auto",
                        prefetch: int | None = None, fp8_block: int = 0, fused_attention: bool = True,
                        reserve_gb: float = 1.0, group: int | None = None) -> tuple[MemoryPlan, int]:
    """(plan, group): both stages of distilling `config`'s transformer into `pattern` on clips of frames x height x
    width, `batch` a step, inside `vram_gb`, and how many fresh blocks train at a time (the most that fit, or
    `group`). Raises MemoryPlanError naming the smallest budget, at one block at a time, when nothing fits."""
    check_plan_inputs(compute_dtype, weight_dtype, vram_gb)
    cfg: LTX2TransformerConfig = config.transformer
    fresh = sum(1 for t, s in zip(cfg.block_kinds, pattern) if t != s)
    if len(pattern) != cfg.num_layers or not fresh:
        raise ValueError(f"pattern {pattern!r}: expected {cfg.num_layers} letters with at least one C where the "
                         f"teacher ({cfg.block_kinds!r}) has an A")
    grid = latent_grid(vae_config_of(config), frames, height, width)
    e = DTYPE_BYTES[compute_dtype]
    usable = int((vram_gb - reserve_gb) * GiB)
    dtypes = (compute_dtype, "fp8") if weight_dtype == "auto" else (weight_dtype,)
    room = BlockRoom(cfg, *transformer_bytes(cfg), compute_dtype, dtypes, usable, prefetch, fp8_block)
    tokens = math.prod(grid)
    state = fresh_block_params(cfg) * FRESH_STATE_BYTES
    latents = batch * 4 * cfg.in_channels * tokens * 4  # clean, noise, noisy and the teacher's velocity (float32)
    text = cfg.caption_channels if cfg.caption_channels is not None else cfg.cross_attention_dim
    contexts = batch * MAX_LENGTH * text * 4
    teacher_act = batch * sampling_activation_bytes(cfg, grid, e, MAX_LENGTH, fused_attention)
    block_act = fresh_block_activation_bytes(cfg, grid, e, batch)
    student_act = training_activation_bytes(cfg, grid, e, MAX_LENGTH, batch, 1, fused_attention=fused_attention)
    caught = 2 * batch * tokens * cfg.width * e  # a group block's input and output from the teacher

    def stages(g: int):
        extra = g * state + latents + contexts
        blockwise = room.plan(STAGES[0], teacher_act + block_act, extra + g * caught, train=True)
        end_to_end = room.plan(STAGES[1], student_act, extra, train=True)
        return blockwise, end_to_end

    sizes = [group] if group else range(fresh, 0, -1)
    for g in sizes:
        (bw, _), (ee, _) = stages(g)
        if bw is not None and ee is not None:
            break
    else:
        (_, bw_need), (_, ee_need) = stages(sizes[-1])  # the given group, or one block at a time
        need = max(bw_need, ee_need) / GiB + reserve_gb
        raise MemoryPlanError(f"hybridizing {cfg.num_layers} blocks into {pattern!r} at {width}x{height}x{frames}, "
                              f"batch {batch}, does not fit {vram_gb:g} GB even {group or 1} fresh block(s) at a "
                              f"time: it needs about {need:.3g} GB; use a smaller --clip or a larger card")
    groups = math.ceil(fresh / g)
    plan = MemoryPlan(getattr(config, "name", "ltx-2"),
                      {"frames": frames, "height": height, "width": width, "latent": list(grid)}, int(vram_gb * GiB),
                      usable, {STAGES[0]: bw, STAGES[1]: ee})
    for sp in plan.stages.values():
        sp.gradient_checkpointing, sp.tokens = True, tokens
        sp.attention = "fused SDPA" if fused_attention else "math SDPA"
        sp.note = (f"{fresh} fresh blocks, {g} at a time ({groups} group{'s' if groups > 1 else ''}), "
                   f"{state / GiB:.2f} GB of float32 AdamW state each; batch {batch}")
    return plan, g


def fresh_groups(replaced: list[int], group: int) -> list[list[int]]:
    """The fresh blocks' positions in training order, `group` at a time (0: all at once), split as evenly as the
    count allows."""
    if group <= 0 or group >= len(replaced):
        return [list(replaced)]
    count = math.ceil(len(replaced) / group)
    base, extra = divmod(len(replaced), count)  # the first `extra` groups take one block more
    bounds = [0]
    for k in range(count):
        bounds.append(bounds[-1] + base + (k < extra))
    return [replaced[a:b] for a, b in itertools.pairwise(bounds)]



def hybridize_placement(config: object, pattern: str, clip: tuple[int, int, int], batch: int,
                        device: torch.device | str, *, offload: str = "auto", vram_gb: float | None = None,
                        compute: torch.dtype = torch.bfloat16, group: int = 0) -> tuple[Placement | None, int]:
    """(placement, group) of a hybridization run: an LTX-2 teacher planned for `vram_gb` with offload "auto" (on a
    CUDA device, or anywhere `vram_gb` is given: the planned code path then runs on the CPU too), the group the plan
    fits unless `group` is given; "stream" streams every block, one ahead; otherwise nothing is placed (None)."""
    device = torch.device(device)
    if offload == "stream":
        return Placement(device, "stream", compute=compute), group
    if offload != "auto" or not is_ltx2_config(config) or (device.type != "cuda" and vram_gb is None):
        return None, group
    budget = vram_gb if vram_gb is not None else device_budget_gb(device)
    plan, fits = plan_ltx2_hybridize(config, pattern, *clip, budget, batch=batch, compute_dtype=dtype_name(compute),
                                     reserve_gb=min(1.0, budget / 8), group=group or None)
    return Placement(device, "auto", compute=compute, plan=plan), fits
