"""What the plans of every model family share: the plan's types, and the searches that fit a stage in the room.

A family's planner (plan.py for AIPROD's hybrid backbone, ltx2_plan.py for LTX-2) works out its modules' bytes and
its activations; the choices made from them are the same for both: how many blocks stay resident and how many
stream (one ahead or more, in the compute dtype or fp8), the attention's query chunk, and, when a required stage
fits nowhere, the error naming the smallest budget that does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from torch import nn

GiB = 1024**3
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
# cuDNN's scratch memory for a VAE decoder's convolutions, beside the tensors a plan counts
VAE_WORKSPACE = 64 * 2**20


class MemoryPlanError(ValueError):
    """No plan fits the budget; the message names the smallest budget that would."""


@dataclass
class StagePlan:
    """One stage: where it runs, its expected peak on the device, and the choices behind it."""

    stage: str
    where: str  # "gpu" | "cpu" | "off"
    peak_bytes: int = 0  # expected peak allocated on the device (an estimate)
    weights_bytes: int = 0
    activation_bytes: int = 0
    blocks_resident: int = 0
    blocks_streamed: int = 0
    prefetch: int = 0
    weight_dtype: str = ""
    compute_dtype: str = ""
    attention: str = ""
    attention_chunk: int = 0
    vae_temporal_chunk: int = 0
    vae_spatial_tile: int = 0
    gradient_checkpointing: bool = False
    tokens: int = 0
    note: str = ""

    @property
    def streamed(self) -> bool:
        return self.blocks_streamed > 0


@dataclass
class MemoryPlan:
    model: str
    clip: dict
    budget_bytes: int
    usable_bytes: int
    stages: dict[str, StagePlan] = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        return max((s.peak_bytes for s in self.stages.values()), default=0)

    def to_dict(self) -> dict:
        def gb(b: int) -> float:
            return round(b / GiB, 3)

        stages = {}
        for name, s in self.stages.items():
            d = asdict(s)
            keep = ["where", "peak_bytes", "weights_bytes", "activation_bytes", "weight_dtype", "compute_dtype"]
            trains = name == "lora_training" or name.startswith("distil_")
            if name in ("sampling", "upscaling") or trains:
                keep += ["blocks_resident", "blocks_streamed", "prefetch", "attention", "attention_chunk", "tokens"]
            if trains:
                keep.append("gradient_checkpointing")
            if name == "vae_decode":
                keep += ["vae_temporal_chunk", "vae_spatial_tile"]
            keep.append("note")
            out = {k: d[k] for k in keep if s.where != "off" or k in ("where", "note")}
            for k in ("peak_bytes", "weights_bytes", "activation_bytes"):
                if k in out:
                    out[k.replace("_bytes", "_gb")] = gb(out.pop(k))
            stages[name] = {k: v for k, v in out.items() if v != ""}
        return {
            "model": self.model,
            "clip": self.clip,
            "budget_gb": gb(self.budget_bytes),
            "usable_gb": gb(self.usable_bytes),
            "peak_gb": gb(self.peak_bytes),
            "estimate": True,
            "stages": stages,
        }



@dataclass(frozen=True)
class BlockBytes:
    linear: int  # elements of Linear weights (stored in fp8 when asked)
    other: int  # elements of everything else (biases, norms, convs, modulation tables)
    linear_tensors: tuple[tuple[int, int], ...]  # shapes of the Linear weights (for block scales)
    largest_linear: int  # elements of the largest Linear weight (one layer upcast at a time)

    def stored(self, weight_dtype: str, compute_dtype: str, fp8_block: int = 0) -> int:
        e = DTYPE_BYTES[compute_dtype]
        if weight_dtype != "fp8":
            return (self.linear + self.other) * DTYPE_BYTES[weight_dtype]
        scales = sum(math.ceil(r / fp8_block) * math.ceil(c / fp8_block) if fp8_block else 1 for r, c in self.linear_tensors)
        return self.linear + 4 * scales + self.other * e


def block_bytes(block: nn.Module) -> BlockBytes:
    """A block's parameter counts, read from its modules (meta-device parameters cost nothing)."""
    lin = [m.weight for m in block.modules() if isinstance(m, nn.Linear)]
    ids = {id(p) for p in lin}
    other = sum(p.numel() for p in block.parameters() if id(p) not in ids)
    return BlockBytes(sum(p.numel() for p in lin), other, tuple(tuple(p.shape) for p in lin),
                      max((p.numel() for p in lin), default=0))


def blocks_bytes(blocks: Iterable[nn.Module]) -> tuple[BlockBytes, ...]:
    return tuple(block_bytes(b) for b in blocks)


def blocks_plan(stage: str, blocks: tuple[BlockBytes, ...], rest: int, compute: str, weight_dtypes: list[str],
                 act: int, extra: int, usable: int, prefetch: int | None, fp8_block: int) -> StagePlan | None:
    """The least streaming that fits: most resident blocks first, the compute dtype before fp8."""
    e = DTYPE_BYTES[compute]
    n = len(blocks)
    # synchronous copies (prefetch 0) are much slower than streaming with prefetch: last resort only
    tries = [[prefetch]] if prefetch is not None else [[2, 1], [0]]
    for prefetches in tries:
        for wd in weight_dtypes:
            stored = [b.stored(wd, compute, fp8_block) for b in blocks]
            upcast = upcast_bytes(blocks, e, stage == "lora_training") if wd == "fp8" else 0
            for k in range(n, -1, -1):
                biggest = max(stored[k:], default=0)
                for pf in ([0] if k == n else prefetches):
                    pf = min(pf, n - k)
                    # streamed (`BlockStreamer`): the block computing, the one before it (its copy is freed
                    # once the GPU is done with it) and pf copies ahead; with pf 0 one copy at a time
                    copies = 0 if k == n else 1 if pf == 0 else 2 + pf
                    weights = rest * e + sum(stored[:k]) + copies * biggest + upcast
                    peak = weights + act + extra
                    if peak <= usable:
                        return StagePlan(stage, "gpu", peak, weights, act + extra, blocks_resident=k,
                                         blocks_streamed=n - k, prefetch=pf, weight_dtype=wd, compute_dtype=compute)
    return None


def upcast_bytes(blocks: tuple[BlockBytes, ...], e: int, train: bool) -> int:
    """fp8 weights upcast to the compute dtype: one layer at a time, but in training a whole block's, which
    its backward keeps until it is done."""
    return max(b.linear if train else b.largest_linear for b in blocks) * e


def min_blocks_peak(blocks, rest, compute, act, extra, fp8_block, train=False) -> int:
    e = DTYPE_BYTES[compute]
    stored = [b.stored("fp8", compute, fp8_block) for b in blocks]
    return rest * e + max(stored) + upcast_bytes(blocks, e, train) + act + extra  # prefetch 0


@dataclass(frozen=True)
class BlockRoom:
    """What the plans of the backbone's stages share: its blocks' bytes, the dtypes they may be stored in, the
    device room and the streaming settings asked for."""

    cfg: object  # the family's backbone config, whose shape the activation formulas read
    blocks: tuple[BlockBytes, ...]
    rest: int
    compute: str
    weight_dtypes: tuple[str, ...]
    usable: int
    prefetch: int | None
    fp8_block: int

    def plan(self, stage: str, act: int, extra: int, train: bool = False) -> tuple[StagePlan | None, int]:
        """The least streaming that fits (or None), and the smallest peak any choice reaches (for the error)."""
        sp = blocks_plan(stage, self.blocks, self.rest, self.compute, list(self.weight_dtypes), act, extra, self.usable,
                          self.prefetch, self.fp8_block)
        return sp, min_blocks_peak(self.blocks, self.rest, self.compute, act, extra, self.fp8_block, train=train)


def check_plan_inputs(compute_dtype: str, weight_dtype: str, vram_gb: float) -> None:
    if compute_dtype not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"compute_dtype={compute_dtype!r}; expected fp32, bf16 or fp16")
    if weight_dtype != "auto" and weight_dtype not in DTYPE_BYTES:
        raise ValueError(f"weight_dtype={weight_dtype!r}; expected auto, {', '.join(DTYPE_BYTES)}")
    if vram_gb <= 0:
        raise ValueError(f"vram_gb={vram_gb} must be positive (the GPU memory to plan for, in GiB)")


def attention_choice(tokens: int, act_fn, fused_attention: bool, usable: int) -> tuple[int, int, str]:
    """(activation bytes, query chunk, description) for a token count: fused attention needs no chunk; the math
    path takes the largest query chunk whose scores leave three quarters of the room free."""
    if fused_attention:
        return act_fn(0, True), 0, "fused SDPA (no N x N scores)"
    for q in (0, 4096, 2048, 1024, 512, 256, 128):
        if q and q >= tokens:
            continue
        a = act_fn(q, False)
        if a <= usable // 4 or q == 128:
            return a, q, "math SDPA: scores of one query chunk at a time"
    raise AssertionError


def with_upscaler(refine: StagePlan | None, need: int, upscaler_weights: int, upscaler_activations: int,
                  usable: int, upscale: bool) -> tuple[StagePlan | None, int]:
    """The upscaling stage: the 2x upscaler, then refinement sampling at 2x (`refine`, planned as a sampling stage).
    Its peak is the larger of the two, and it fits only when both do; without --upscale it is planned but off."""
    peak = upscaler_weights + upscaler_activations
    if refine is not None:
        refine.weights_bytes = max(refine.weights_bytes, upscaler_weights)
        refine.peak_bytes = max(refine.peak_bytes, peak)
        if peak > usable:
            refine = None
    if refine is not None and not upscale:
        refine.note += " (runs with --upscale)"
    return refine, max(need, peak)


def settle_stages(plan: MemoryPlan, needs: dict[str, int], required: tuple[str, ...], reserve_gb: float,
                  vram_gb: float, least_decode: str = "one latent frame at a time in small tiles") -> None:
    """An optional stage that has no plan is marked "off"; a required one raises MemoryPlanError naming the
    smallest budget that fits (least_decode: the smallest decode the family's planner tries, for the message)."""
    for k, sp in plan.stages.items():
        if sp is None and k not in required:
            plan.stages[k] = StagePlan(k, "off", note=f"does not fit: needs about {needs[k] / GiB + reserve_gb:.1f} GB")
    failed = [k for k, sp in plan.stages.items() if sp is None]
    if not failed:
        return
    # a required stage the model has no part for (upscaling without an upscaler) has no need of its own
    need_gb = max(needs[k] for k in (*required, *failed) if k in needs) / GiB + reserve_gb
    smallest = math.ceil(need_gb * 10) / 10
    names = ", ".join(s.replace("_", " ") for s in failed)
    least = f" and the VAE decoded {least_decode}" if "vae_decode" in failed else ""
    clip = plan.clip
    raise MemoryPlanError(
        f"vram {vram_gb:g} GB is too small for {plan.model} at {clip['width']}x{clip['height']}x{clip['frames']}: "
        f"{names} needs about {need_gb:.2f} GB even with every block streamed in fp8{least} ({reserve_gb:g} GB kept "
        f"free); the smallest budget that works is --vram {smallest:g}, or plan a smaller clip (fewer frames or pixels)"
    )
