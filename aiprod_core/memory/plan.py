"""VRAM planner: for a model, a clip size and a budget, what runs where and the peak each stage expects.

Estimates are parameter bytes (counted on a meta-device model, so the base preset costs nothing) plus
activation formulas per token. The formulas count the tensors alive at the worst moment of each
computation; the per-token coefficients were checked against measured peaks (tests/test_memory.py
measures them on the CPU; bench/gpu_memory.py on a GPU):

- sampling, one backbone forward, B = 2 with CFG: x, the residual stream and the modulated input
  (3 W), the gated MLP's projection (2 M), its gate and product (2 M), plus 0.5 W of norms and RoPE
  temporaries: B N e (4 M + 3.5 W) with fused attention (flash / memory-efficient SDPA, no N x N
  scores). Without fused attention the scores B H q N (fp32) of a query chunk q are added.
- LoRA training with gradient checkpointing: the input of every block (n W) kept for backward, plus one
  block's recomputed activations and their gradients (6 M + 14 W); in bf16/fp16, plus the float32 copies
  that rms_norm keeps for its backward.
- VAE decode: the output video plus about 6 tensors of the decoder's largest level for the part
  decoded at once (chunk x tile), plus the causal caches of chunked decoding.
- upscaler: about 5 mid-width tensors at the output grid.

Stages: text encoding, sampling, upscaling (upscaler + refinement sampling at 2x), VAE decode, LoRA
training. Each is planned on its own: the pipeline moves a stage's modules to the GPU and back, so
stages never share the device.
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache

import torch

from ..config import BackboneConfig, ModelConfig, UpscalerConfig, VAEConfig
from ..models.backbone import HybridBackbone
from ..models.upscaler import LatentUpscaler
from ..models.vae import CausalVideoVAE
from ..text.size import text_encoder_param_count
from .ltx2_plan import is_ltx2_config, plan_ltx2_memory
from .stages import (
    DTYPE_BYTES,
    VAE_WORKSPACE,
    BlockBytes,
    BlockRoom,
    GiB,
    MemoryPlan,
    MemoryPlanError,
    StagePlan,
    attention_choice,
    blocks_bytes,
    check_plan_inputs,
    settle_stages,
    with_upscaler,
)

__all__ = ["DTYPE_BYTES", "BlockBytes", "GiB", "MemoryPlan", "MemoryPlanError", "StagePlan", "plan_memory"]

# -- parameter bytes ----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _backbone_bytes(cfg_json: str) -> tuple[tuple[BlockBytes, ...], int]:
    cfg = BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(cfg_json).items()})
    with torch.device("meta"):
        bb = HybridBackbone(cfg)
    blocks = blocks_bytes(bb.blocks)
    rest = sum(p.numel() for n, p in bb.named_parameters() if not n.startswith("blocks."))
    return blocks, rest


def backbone_bytes(cfg: BackboneConfig) -> tuple[tuple[BlockBytes, ...], int]:
    """Per-block parameter counts and the element count of everything outside the blocks."""
    return _backbone_bytes(json.dumps(dataclasses.asdict(cfg), sort_keys=True))


def module_params(kind: str, cfg) -> int:
    with torch.device("meta"):
        m = CausalVideoVAE(cfg).decoder if kind == "vae_decoder" else LatentUpscaler(cfg)
    return sum(p.numel() for p in m.parameters())


# -- activation formulas ------------------------------------------------------------------------------


def sampling_activation_bytes(cfg: BackboneConfig, batch: int, tokens: int, e: int, attention_chunk: int = 0,
                              fused_attention: bool = True) -> int:
    """Peak activations of one backbone forward without grad: latent-grid tokens N, batch B, e bytes."""
    w, m = cfg.width, cfg.mlp_dim
    per_token = max(4 * m + 3.5 * w, 9 * w) + 8 * cfg.in_channels  # + latent in/out copies
    act = batch * tokens * e * per_token
    if not fused_attention:
        q = attention_chunk or tokens
        act += batch * cfg.heads * q * tokens * 4  # fp32 scores of one query chunk (math path)
    return int(act)


def sampler_state_bytes(cfg: BackboneConfig, tokens: int) -> int:
    """The sampler's own latents in fp32 (x, noise, velocities, the CFG halves)."""
    return 8 * cfg.in_channels * tokens * 4


def training_activation_bytes(cfg: BackboneConfig, batch: int, tokens: int, e: int, checkpointing: bool = True) -> int:
    """Peak activations of a forward + backward (frozen blocks, LoRA), gradient checkpointing per block."""
    w, m, n = cfg.width, cfg.mlp_dim, len(cfg.pattern)
    # without checkpointing every block keeps its saved activations (measured average of A and C)
    per_token = n * w + 6 * m + 14 * w if checkpointing else n * (4.4 * m + 9.4 * w)
    act = batch * tokens * e * (per_token + 8 * cfg.in_channels)
    if e < 4:
        # rms_norm upcasts bf16/fp16 input to float32 and keeps that for its backward: measured on the CPU,
        # 16 W bytes a token in the one recomputed block, or 12 W per attention and 5 W per conv block kept
        extra = 16 * w if checkpointing else (12 * cfg.attention_blocks + 5 * cfg.conv_blocks) * w
        act += batch * tokens * extra
    return int(act)


def lora_state_bytes(cfg: BackboneConfig, rank: int) -> int:
    """LoRA parameters, gradients and AdamW moments in fp32 for the default targets (10 per A block)."""
    w, m = cfg.width, cfg.mlp_dim
    per_a = 8 * rank * 2 * w + rank * (w + 2 * m) + rank * (m + w)  # 8 attention projections + ff in/out
    per_c = rank * (w + 2 * m) + rank * (m + w)
    params = cfg.attention_blocks * per_a + cfg.conv_blocks * per_c
    return params * 4 * 4


def _decoder_levels(cfg: VAEConfig) -> list[tuple[int, int, int]]:
    """(channels, time factor, space factor) of each decoder level, highest resolution first."""
    levels = []
    for i in range(len(cfg.channels)):
        ft = math.prod(2 if d in ("all", "time") else 1 for d in cfg.down[i:])
        fs = math.prod(2 if d in ("all", "space") else 1 for d in cfg.down[i:])
        levels.append((cfg.channels[i], ft, fs))
    return levels


def vae_decode_bytes(cfg: VAEConfig, latent: tuple[int, int, int], temporal_chunk: int, spatial_tile: int,
                     e: int, batch: int = 1, gpu: bool = True) -> int:
    """Peak of decoding a latent grid (t, h, w) with the given chunk (latent frames) and tile (latent px);
    gpu: with cuDNN's convolution scratch memory (the plan's case; False: the CPU's peak)."""
    t, h, w = latent
    tc = cfg.temporal_compression
    tl = t if temporal_chunk <= 0 else min(temporal_chunk, t)
    tiled = spatial_tile and (spatial_tile < h or spatial_tile < w)
    hl, wl = (min(spatial_tile, h), min(spatial_tile, w)) if tiled else (h, w)
    largest = 0
    cache = 0
    for ch, ft, fs in _decoder_levels(cfg):
        frames = tl * ft if tl < t else 1 + (t - 1) * ft
        largest = max(largest, ch * frames * hl * fs * wl * fs)
        if tl < t:  # causal caches: 2 past frames per causal conv of this level
            convs = 2 * cfg.layers_per_level + 1
            cache += convs * 2 * ch * hl * fs * wl * fs
    sc = cfg.spatial_compression
    out = 3 * (1 + (t - 1) * tc) * h * sc * w * sc
    chunk_out = 3 * (tl * tc) * hl * sc * wl * sc
    acc = 2 * chunk_out if (tiled or tl < t) else 0  # the chunk's frames and the weighted copy
    if tiled:
        out += h * sc * w * sc  # the blend weights
    # 6 tensors of the largest level (measured on the CPU); cuDNN takes one more and a workspace (fitted to decodes
    # of the base VAE on a GPU in bf16 at 768x512x121, whole, in 4-frame chunks and in tiles: within 5%, or above)
    largest_tensors = 7 if gpu else 6
    return int(batch * e * (out + largest_tensors * largest + cache + acc)) + (VAE_WORKSPACE if gpu else 0)


def upscaler_bytes(cfg: UpscalerConfig, latent: tuple[int, int, int], e: int, batch: int = 1) -> int:
    t, h, w = latent
    return int(batch * e * (5 * cfg.mid_channels * t * (2 * h) * (2 * w) + 2 * cfg.latent_channels * t * h * w * 5))


def text_encoding_bytes(params: int, dim: int, ff_dim: int, length: int, e: int, batch: int = 2) -> tuple[int, int]:
    """(weights, activations) of a text encoder forward: a few [B, L, D] and [B, L, ff] tensors."""
    return params * e, batch * length * (6 * dim + 2 * ff_dim) * e


# -- the planner -------------------------------------------------------------------------------------


def plan_vae_decode(cfg: VAEConfig, latent: tuple[int, int, int], usable_bytes: int, e: int) -> tuple[int, int, int] | None:
    """(temporal chunk, spatial tile, activation bytes): the least chunking and tiling that fits, or None.

    Chunking is exact, so 4 latent frames at a time is used even when the whole clip would fit (a margin
    for convolution workspaces); tiles blend seams, so they come last.
    """
    t, h, w = latent
    options = [(0, 0)] if t <= 4 else []
    options += [(4, 0), (2, 0), (1, 0), (2, 32), (1, 32), (1, 16), (1, 8), (1, 4)]
    for chunk, tile in options:
        if (chunk and chunk >= t) or (tile and tile >= max(h, w)):
            continue
        a = vae_decode_bytes(cfg, latent, chunk, tile, e)
        if a <= usable_bytes:
            return chunk, tile, a
    return None




def _text_encoding_plan(config: ModelConfig, text_params: int | None, compute_dtype: str, usable: int) -> StagePlan:
    """On the GPU when the encoder fits, else on the CPU (0 bytes on the device); embeddings are cached by prompt."""
    if text_params is None:
        text_params = text_encoder_param_count(config.text)
    e = DTYPE_BYTES[compute_dtype]
    tw, ta = text_encoding_bytes(text_params, config.text.dim, config.text.ff_dim, config.text.max_length, e)
    if tw + ta <= usable:
        return StagePlan("text_encoding", "gpu", tw + ta, tw, ta, weight_dtype=compute_dtype, compute_dtype=compute_dtype,
                         note="embeddings cached on disk by prompt hash")
    return StagePlan("text_encoding", "cpu", 0, 0, 0, compute_dtype="fp32",
                     note=f"{tw / GiB:.1f} GB of weights do not fit: runs on the CPU; embeddings cached on disk by prompt hash")



def _sampling_plan(room: BlockRoom, stage: str, tokens: int, batch: int, fused_attention: bool,
                   note: str) -> tuple[StagePlan | None, int]:
    """One backbone forward per step over `tokens` latent tokens, `batch` items (2 with CFG), and the sampler's
    own latents."""
    e = DTYPE_BYTES[room.compute]
    act, qc, desc = attention_choice(
        tokens, lambda q, f: sampling_activation_bytes(room.cfg, batch, tokens, e, q, f), fused_attention, room.usable)
    sp, need = room.plan(stage, act, sampler_state_bytes(room.cfg, tokens))
    if sp is not None:
        sp.attention, sp.attention_chunk, sp.tokens, sp.note = desc, qc, tokens, note
    return sp, need


def _upscaling_plan(config: ModelConfig, room: BlockRoom, latent: tuple[int, int, int], batch: int,
                    fused_attention: bool, upscale: bool) -> tuple[StagePlan | None, int]:
    """The 2x latent upscaler, then refinement sampling at 2x: the stage's peak is the larger of the two, and it
    fits only when both do."""
    t, h, w = latent
    e = DTYPE_BYTES[room.compute]
    up_w = module_params("upscaler", config.upscaler) * e
    up_a = upscaler_bytes(config.upscaler, latent, e)
    refine, need = _sampling_plan(room, "upscaling", t * h * w * 4, batch, fused_attention,
                                  "2x latent upscaler, then refinement sampling at 2x")
    return with_upscaler(refine, need, up_w, up_a, room.usable, upscale)


def _vae_decode_plan(config: ModelConfig, latent: tuple[int, int, int], upscale: bool, compute_dtype: str,
                     usable: int) -> tuple[StagePlan | None, int]:
    """The least chunking and tiling that fits beside the decoder's weights (chunking is exact, tiles blend seams),
    for the 2x grid when the clip is upscaled; the need is that of one latent frame at a time in 4 px tiles."""
    t, h, w = latent
    grid = (t, 2 * h, 2 * w) if upscale else (t, h, w)
    e = DTYPE_BYTES[compute_dtype]
    vae_w = module_params("vae_decoder", config.vae) * e + 2 * config.vae.latent_channels * 4
    need = vae_w + vae_decode_bytes(config.vae, grid, 1, 4, e)
    choice = plan_vae_decode(config.vae, grid, usable - vae_w, e)
    if choice is None:
        return None, need
    chunk, tile, a = choice
    return StagePlan("vae_decode", "gpu", vae_w + a, vae_w, a, weight_dtype=compute_dtype, compute_dtype=compute_dtype,
                     vae_temporal_chunk=chunk, vae_spatial_tile=tile,
                     note="chunks are exact; tiles overlap 2 latent px and blend" + (" (2x clip)" if upscale else "")
                     ), need


def _lora_training_plan(config: ModelConfig, room: BlockRoom, clip: tuple[int, int, int], batch: int, lora_rank: int,
                        fused_attention: bool) -> tuple[StagePlan | None, int]:
    """Frozen blocks (streamed when needed), adapters and their optimiser state resident, checkpointing per block,
    for `batch` clips (frames, height, width) a step."""
    frames, height, width = clip
    _, t, h, w = config.vae.latent_shape(frames, height, width)
    tokens = t * h * w
    b = room.cfg
    act = training_activation_bytes(b, batch, tokens, DTYPE_BYTES[room.compute])
    extra = lora_state_bytes(b, lora_rank) + config.text.max_length * b.text_dim * DTYPE_BYTES[room.compute]
    lp, need = room.plan("lora_training", act, extra, train=True)
    if lp is not None:
        lp.gradient_checkpointing, lp.tokens = True, tokens
        lp.attention = "fused SDPA" if fused_attention else "math SDPA"
        lp.note = (f"rank {lora_rank}, clip {frames}x{height}x{width}" + (f", batch {batch}" if batch > 1 else "")
                   + ", cached latents; the text encoder (and its adapters, when trained) is not counted: it stays "
                   "in CPU memory with --offload stream, and with auto unless it fits beside this")
    return lp, need


def plan_memory(
    config: ModelConfig | object,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    vram_gb: float = 8.0,
    *,
    cfg: bool = True,
    upscale: bool = False,
    compute_dtype: str = "bf16",
    weight_dtype: str = "auto",
    prefetch: int | None = None,
    fp8_block: int = 0,
    lora_rank: int = 16,
    train_clip: tuple[int, int, int] | None = None,
    train_batch: int = 1,
    text_params: int | None = None,
    fused_attention: bool = True,
    reserve_gb: float = 1.0,
    train: bool = False,
    required: tuple[str, ...] | None = None,
) -> MemoryPlan:
    """Plan every stage of text -> video (and LoRA training) for a clip inside `vram_gb`.

    reserve_gb is kept free for the CUDA context and allocator slack. weight_dtype: "auto" (the
    compute dtype, fp8 only when that cannot fit), or one of fp32/bf16/fp16/fp8. train_clip: (frames,
    height, width) and train_batch the clips per step of LoRA training (default: the clip, one). Raises MemoryPlanError naming the smallest
    budget that fits when a required stage (sampling, decode, upscaling with `upscale`, LoRA training
    with `train`; or those named in `required`) has no plan; an optional stage that does not fit is marked "off".

    An LTX-2 model's config (one whose `transformer` is an LTX2TransformerConfig) is planned by
    `ltx2_plan.plan_ltx2_memory` with the same arguments: this is the one place a family's planner is chosen.
    """
    if is_ltx2_config(config):
        return plan_ltx2_memory(config, height, width, frames, vram_gb, cfg=cfg, upscale=upscale,
                                compute_dtype=compute_dtype, weight_dtype=weight_dtype, prefetch=prefetch,
                                fp8_block=fp8_block, lora_rank=lora_rank, train_clip=train_clip,
                                train_batch=train_batch, fused_attention=fused_attention, reserve_gb=reserve_gb,
                                train=train, required=required)
    frames, height, width = frames or config.frames, height or config.height, width or config.width
    check_plan_inputs(compute_dtype, weight_dtype, vram_gb)
    _, t, h, w = config.vae.latent_shape(frames, height, width)
    budget = int(vram_gb * GiB)
    usable = budget - int(reserve_gb * GiB)
    plan = MemoryPlan(config.name, {"frames": frames, "height": height, "width": width, "latent": [t, h, w]}, budget, usable)
    room = BlockRoom(config.backbone, *backbone_bytes(config.backbone), compute_dtype,
                      (compute_dtype, "fp8") if weight_dtype == "auto" else (weight_dtype,), usable, prefetch, fp8_block)
    batch = 2 if cfg else 1
    needs: dict[str, int] = {}  # stage -> smallest peak any choice reaches, for the error

    plan.stages["text_encoding"] = _text_encoding_plan(config, text_params, compute_dtype, usable)
    plan.stages["sampling"], needs["sampling"] = _sampling_plan(
        room, "sampling", t * h * w, batch, fused_attention, f"batch {batch} (CFG)" if cfg else "batch 1")
    if config.upscaler is not None:
        plan.stages["upscaling"], needs["upscaling"] = _upscaling_plan(config, room, (t, h, w), batch, fused_attention,
                                                                       upscale)
    plan.stages["vae_decode"], needs["vae_decode"] = _vae_decode_plan(config, (t, h, w), upscale, compute_dtype, usable)
    plan.stages["lora_training"], needs["lora_training"] = _lora_training_plan(
        config, room, train_clip or (frames, height, width), train_batch, lora_rank, fused_attention)

    if required is None:
        required = ("sampling", "vae_decode", *(("upscaling",) if upscale else ()), *(("lora_training",) if train else ()))
    settle_stages(plan, needs, required, reserve_gb, vram_gb)
    return plan
