"""Placement: what each stage of a run puts where, decided once and asked by every stage.

    placement = Placement.build(config, (frames, height, width), torch.device("cuda"), vram_gb=8, offload="auto",
                                compute=torch.bfloat16, cfg=True)
    placement.blocks("sampling")          # BlockPlacement(streamed=True, resident=30, prefetch=2, fp8=False, ...)
    placement.decode_chunks()             # (4, 0): the VAE decodes 4 latent frames at a time, whole frames
    with placement.guard("sampling"), placement.backbone(backbone, "sampling"):
        ...                               # the blocks resident or streamed as planned, attention chunked

It wraps the planner's MemoryPlan (memory/plan.py, which does the arithmetic) with what a run needs beside it: the
device, the offload mode and the weight storage, checked once when the placement is made. The pipeline, the
sampling loop, the nodes and the trainer all build one and ask it; none of them decides placement on its own.

offload: "none" runs where the modules are (nothing is planned); "auto" plans on a CUDA device for `vram_gb` (None:
what is free) and changes nothing on the CPU; "stream" streams every block of the backbone, on the CPU too (its
copies are no-ops there). weight_dtype: how the backbone's weights are stored while they run: "auto" (as loaded,
fp8 only when the plan needs it), "fp32", "bf16", "fp16" (plan for these), or "fp8".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal, get_args

import torch
from torch import nn

from ..config import ModelConfig, UpscalerConfig, VAEConfig
from ..models.vae import VAE_CHUNK
from .engine import OFFLOAD_MODES, OffloadMode, device_budget_gb, dtype_name, on_device, stage_guard
from .plan import GiB, MemoryPlan, StagePlan, plan_memory, plan_vae_decode, upscaler_bytes, vae_decode_bytes
from .streaming import BlockStreamer, block_list, stream_blocks

WeightDtype = Literal["auto", "fp32", "bf16", "fp16", "fp8"]
Clip = tuple[int | None, int | None, int | None]  # frames, height, width (None: the model's)

# the decode node's rules where nothing is planned (no budget): the memory of a few latent frames at a time, at no
# cost in quality (causal chunks are exact), and tiles above 64x64 latent px (they blend seams, so only when large)
NODE_DECODE_TILE = 48
NODE_DECODE_WHOLE_AREA = 64 * 64
# a decode planned after its decoder is on the device: the budget already counts the weights and the CUDA context
DECODER_PLACED_RESERVE_GB = 0.5


@dataclass(frozen=True)
class BlockPlacement:
    """Where the backbone is while a stage runs: moved whole (streamed False), or its blocks streamed with the first
    `resident` kept on the device, `prefetch` copies ahead, Linear weights in fp8 when `fp8`."""

    streamed: bool
    resident: int = 0
    prefetch: int = 0
    fp8: bool = False
    attention_chunk: int = 0  # queries at a time in attention (0: all)


@dataclass(frozen=True)
class Placement:
    device: torch.device
    offload: OffloadMode = "none"
    weight_dtype: WeightDtype = "auto"
    plan: MemoryPlan | None = None  # None: nothing planned (the CPU, offload "none", or streamed as asked)
    compute: torch.dtype | None = None  # what streamed weights are upcast to (None: each weight's own dtype)
    unplanned_decode: tuple[int, int] = (0, 0)  # (temporal chunk, spatial tile) when no decode was planned

    def __post_init__(self):
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload={self.offload!r}; expected one of {OFFLOAD_MODES}")
        if self.weight_dtype not in get_args(WeightDtype):
            raise ValueError(f"weight_dtype={self.weight_dtype!r}; expected one of {get_args(WeightDtype)} "
                             "(auto: as loaded, fp8 only when the plan needs it)")
        object.__setattr__(self, "device", torch.device(self.device))

    # -- building -------------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, config: ModelConfig, clip: Clip, device: torch.device | str, *, vram_gb: float | None = None,
              offload: OffloadMode = "auto", compute: torch.dtype | str = torch.float32, weight_dtype: WeightDtype = "auto",
              cfg: bool = True, upscale: bool = False, lora_rank: int = 16, reserve_gb: float | None = None) -> Placement:
        """Text -> video on `device`: planned when it offloads on a CUDA device, for `vram_gb` (None: what is free
        there now), keeping `reserve_gb` free (None: 1 GB, or an eighth of a smaller budget). cfg: two batch items a
        step; upscale: the refinement at 2x and its decode are planned as required. Raises MemoryPlanError, naming
        the smallest budget that fits, when nothing does."""
        placement = cls(device, offload, weight_dtype, compute=_dtype(compute))
        if offload == "none" or placement.device.type == "cpu":
            return placement
        budget = vram_gb if vram_gb is not None else device_budget_gb(placement.device)
        frames, height, width = clip
        plan = plan_memory(config, height, width, frames, budget, cfg=cfg, upscale=upscale,
                           compute_dtype=dtype_name(placement.compute), weight_dtype=weight_dtype, prefetch=None,
                           lora_rank=lora_rank, reserve_gb=min(1.0, budget / 8) if reserve_gb is None else reserve_gb)
        return replace(placement, plan=plan)

    @classmethod
    def for_training(cls, config: ModelConfig, clip: tuple[int, int, int], batch: int, device: torch.device | str, *,
                     vram_gb: float | None = None, offload: OffloadMode = "auto", lora_rank: int,
                     compute: torch.dtype, weights: torch.dtype) -> Placement:
        """A LoRA phase's frozen backbone on `device`: its clips (frames, height, width) and `batch` per process
        planned, in the `compute` dtype (autocast) with the frozen `weights` as loaded (fp8 only when those do not
        fit). Planned with offload "auto" on a CUDA device, or anywhere `vram_gb` is given (the planned code path then
        runs on the CPU too, its copies no-ops); "stream" streams every block, one ahead; "none" plans nothing."""
        placement = cls(device, offload, "auto")
        if offload != "auto" or (placement.device.type != "cuda" and vram_gb is None):
            return placement
        return replace(placement, plan=_training_plan(config, clip, batch, placement.device, vram_gb, lora_rank,
                                                      compute, weights))

    @classmethod
    def for_vae_decode(cls, vae: VAEConfig, latent: tuple[int, int, int], device: torch.device | str, *,
                       vram_gb: float | None, offload: OffloadMode, dtype: torch.dtype) -> Placement:
        """Decoding a latent grid (t, h, w) with the decoder already on `device` (a host placed it, then measured
        `vram_gb` free): the least chunking and tiling that fits in all of it but 0.5 GB. Without a budget, or when
        nothing fits: VAE_CHUNK latent frames at a time, in tiles of 48 latent px above 64x64."""
        t, h, w = latent
        unplanned = (VAE_CHUNK, 0 if h * w <= NODE_DECODE_WHOLE_AREA else NODE_DECODE_TILE)
        placement = cls(device, offload, "auto", unplanned_decode=unplanned)
        if offload == "none" or vram_gb is None:
            return placement
        usable = int((vram_gb - DECODER_PLACED_RESERVE_GB) * GiB)
        choice = plan_vae_decode(vae, latent, usable, dtype.itemsize)
        if choice is None:
            return placement
        chunk, tile, act = choice
        stage = StagePlan("vae_decode", "gpu", act, 0, act, weight_dtype=dtype_name(dtype), compute_dtype=dtype_name(dtype),
                          vae_temporal_chunk=chunk, vae_spatial_tile=tile, note="the decoder already on the device")
        plan = MemoryPlan("vae", {"latent": [t, h, w]}, int(vram_gb * GiB), usable, {"vae_decode": stage})
        return replace(placement, plan=plan)

    # -- answers --------------------------------------------------------------------------------------------------
    @property
    def planned(self) -> bool:
        return self.plan is not None

    def stage(self, name: str) -> StagePlan | None:
        """The planner's answer for a stage (None when nothing was planned)."""
        return self.plan.stages.get(name) if self.plan is not None else None

    @property
    def peak_bytes(self) -> int:
        return self.plan.peak_bytes if self.plan is not None else 0

    def room_bytes(self, stage: str) -> int:
        """What the plan leaves free on the device beside `stage`'s expected peak."""
        sp = self.stage(stage)
        return self.plan.usable_bytes - sp.peak_bytes if sp is not None else 0

    @property
    def text_on_device(self) -> bool:
        """Whether the text encoder runs on the device moved whole (planned, and it fits); else it stays where it is.
        A plan that streams its layers (LTX-2's Gemma) says so in `blocks("text_encoding", n)`, for `backbone()`."""
        sp = self.stage("text_encoding")
        return sp is not None and sp.where == "gpu" and sp.blocks_streamed == 0

    def decode_chunks(self, temporal_chunk: int = 0, spatial_tile: int = 0) -> tuple[int, int]:
        """(latent frames at a time, tile in latent px) for the VAE decode: the caller's own values when it gives
        either (the other as unplanned), else the plan's, else the unplanned ones."""
        if temporal_chunk or spatial_tile:
            return temporal_chunk or self.unplanned_decode[0], spatial_tile or self.unplanned_decode[1]
        sp = self.stage("vae_decode")
        if sp is not None and sp.where == "gpu":
            return sp.vae_temporal_chunk, sp.vae_spatial_tile
        return self.unplanned_decode

    def blocks(self, stage: str, n_blocks: int) -> BlockPlacement | None:
        """Where a backbone of `n_blocks` blocks is during `stage`; None: it stays where it is."""
        sp = self.stage(stage)
        if sp is None:
            if self.offload == "stream":
                return BlockPlacement(True, resident=0, prefetch=1, fp8=self.weight_dtype == "fp8")
            if self.offload == "none" or self.device.type == "cpu":
                return None
            return BlockPlacement(False)
        resident = 0 if self.offload == "stream" else sp.blocks_resident
        fp8 = sp.weight_dtype == "fp8"
        if resident >= n_blocks and not fp8:
            return BlockPlacement(False, attention_chunk=sp.attention_chunk)
        prefetch = sp.prefetch if resident == sp.blocks_resident else max(1, sp.prefetch)  # as planned, or forced
        return BlockPlacement(True, resident, prefetch, fp8, sp.attention_chunk)

    # -- applying -------------------------------------------------------------------------------------------------
    def guard(self, stage: str):
        """An out-of-memory error inside `stage` names the stage, the plan's expected peak and what to lower."""
        return stage_guard(stage, self.plan)

    def moved(self, module: nn.Module | None, parts: tuple[str, ...] | None = None):
        """`module` (or only its `parts`) on the device for the block, then back (see engine.on_device)."""
        return on_device(module, self.device, parts)

    @contextmanager
    def backbone(self, backbone: nn.Module, stage: str, keep: frozenset[int] = frozenset()) -> Iterator[BlockStreamer | None]:
        """`backbone` (a model with a block list, see streaming.BLOCK_LISTS, and `set_attention_chunk` where it chunks
        attention: AIPROD's backbone, LTX-2's video transformer, or Gemma's decoder for "text_encoding") placed for
        `stage` inside the block; yields the BlockStreamer when its blocks stream. keep: blocks that train, moved
        to the device whole instead of streamed."""
        where = self.blocks(stage, len(block_list(backbone)[1]))
        if where is None:
            yield None
            return
        if not where.streamed:
            ctx = on_device(backbone, self.device)
        else:
            ctx = stream_blocks(backbone, self.device, resident=where.resident, prefetch=where.prefetch,
                                weight_dtype="fp8" if where.fp8 else None, compute_dtype=self.compute, keep=keep)
        # an unplanned placement leaves the attention as the model has it; so does a model without query chunks
        chunked = self.stage(stage) is not None and hasattr(backbone, "set_attention_chunk")
        if chunked:
            backbone.set_attention_chunk(where.attention_chunk)
        try:
            with ctx as streamer:
                yield streamer
        finally:
            if chunked:
                backbone.set_attention_chunk(0)


def vae_decode_room(vae: VAEConfig, latent: tuple[int, int, int], dtype: torch.dtype) -> int:
    """Bytes a host frees beside the decoder before it decodes a latent grid (t, h, w): a decode in VAE_CHUNK
    latent frames at a time, so that the plan made once the decoder is there has room to choose from."""
    return vae_decode_bytes(vae, latent, VAE_CHUNK, 0, dtype.itemsize)


def upscale_room(upscaler: UpscalerConfig, latent: tuple[int, int, int], dtype: torch.dtype, batch: int = 1) -> int:
    """Bytes a host frees beside the 2x latent upscaler's weights for its activations on `batch` latent grids (t, h, w)."""
    return upscaler_bytes(upscaler, latent, dtype.itemsize, batch)


def _dtype(d: torch.dtype | str) -> torch.dtype:
    names = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if isinstance(d, torch.dtype):
        return d
    if d not in names:
        raise ValueError(f"compute dtype {d!r}; expected one of {', '.join(names)}")
    return names[d]


def _training_plan(config: ModelConfig, clip: tuple[int, int, int], batch: int, device: torch.device,
                   vram_gb: float | None, lora_rank: int, compute: torch.dtype, weights: torch.dtype) -> MemoryPlan:
    budget = vram_gb if vram_gb is not None else device_budget_gb(device)
    frames, height, width = clip
    c = dtype_name(compute)
    return plan_memory(config, height, width, frames, budget, cfg=False, required=("lora_training",), compute_dtype=c,
                       weight_dtype="auto" if dtype_name(weights) == c else dtype_name(weights), lora_rank=lora_rank,
                       train_batch=batch, reserve_gb=min(1.0, budget / 8))


# -- memory.engine's old names, for one release ---------------------------------------------------------------------


def _old_plan_for(config, frames, height, width, device, vram_gb, compute, weight_dtype, offload, cfg, upscale):
    return Placement.build(config, (frames, height, width), device, vram_gb=vram_gb, offload=offload, compute=compute,
                           weight_dtype="fp8" if weight_dtype == "fp8" else "auto", cfg=cfg, upscale=upscale).plan


def _old_training_plan(config, phase, device, vram_gb, lora_rank, autocast, weights, processes=1):
    spec = phase.spec
    return _training_plan(config, (spec.frames, spec.height, spec.width), max(1, phase.batch // processes),
                          torch.device(device), vram_gb, lora_rank, torch.bfloat16 if autocast else torch.float32, weights)


def _old_backbone_stage(backbone, device, sp, offload, weight_dtype=None):
    plan = None if sp is None else MemoryPlan("", {}, 0, 0, {sp.stage: sp})
    compute = next(backbone.parameters()).dtype
    placement = Placement(device, offload, "fp8" if weight_dtype == "fp8" else "auto", plan, compute)
    return placement.backbone(backbone, sp.stage if sp is not None else "sampling")


OLD_ENGINE_NAMES = {"plan_for": _old_plan_for, "training_plan": _old_training_plan, "backbone_stage": _old_backbone_stage}


def old_engine_name(name: str):
    warnings.warn(f"aiprod_core.memory.engine.{name} is replaced by aiprod_core.memory.placement.Placement "
                  "(Placement.build, Placement.for_training, Placement.backbone)", DeprecationWarning, stacklevel=3)
    return OLD_ENGINE_NAMES[name]


__all__ = ["BlockPlacement", "OffloadMode", "Placement", "WeightDtype", "upscale_room", "vae_decode_room"]
