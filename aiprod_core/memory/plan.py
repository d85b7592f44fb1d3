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

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch

from ..config import BackboneConfig, ModelConfig, UpscalerConfig, VAEConfig
from ..models.backbone import HybridBackbone
from ..models.upscaler import LatentUpscaler
from ..models.vae import CausalVideoVAE
from ..text.size import text_encoder_param_count

GiB = 1024**3
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


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
            if name in ("sampling", "upscaling", "lora_training"):
                keep += ["blocks_resident", "blocks_streamed", "prefetch", "attention", "attention_chunk", "tokens"]
            if name == "lora_training":
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


# -- parameter bytes ----------------------------------------------------------------------------------


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


@lru_cache(maxsize=8)
def _backbone_bytes(cfg_json: str) -> tuple[tuple[BlockBytes, ...], int]:
    cfg = BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in __import__("json").loads(cfg_json).items()})
    with torch.device("meta"):
        bb = HybridBackbone(cfg)
    blocks = []
    for block in bb.blocks:
        lin = [m.weight for m in block.modules() if isinstance(m, torch.nn.Linear)]
        ids = {id(p) for p in lin}
        other = sum(p.numel() for p in block.parameters() if id(p) not in ids)
        blocks.append(BlockBytes(sum(p.numel() for p in lin), other, tuple(tuple(p.shape) for p in lin),
                                 max(p.numel() for p in lin)))
    rest = sum(p.numel() for n, p in bb.named_parameters() if not n.startswith("blocks."))
    return tuple(blocks), rest


def backbone_bytes(cfg: BackboneConfig) -> tuple[tuple[BlockBytes, ...], int]:
    """Per-block parameter counts and the element count of everything outside the blocks."""
    import dataclasses
    import json

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


VAE_WORKSPACE = 64 * 2**20


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



def _blocks_plan(stage: str, blocks: tuple[BlockBytes, ...], rest: int, compute: str, weight_dtypes: list[str],
                 act: int, extra: int, usable: int, prefetch: int | None, fp8_block: int) -> StagePlan | None:
    """The least streaming that fits: most resident blocks first, the compute dtype before fp8."""
    e = DTYPE_BYTES[compute]
    n = len(blocks)
    # synchronous copies (prefetch 0) are much slower than streaming with prefetch: last resort only
    tries = [[prefetch]] if prefetch is not None else [[2, 1], [0]]
    for prefetches in tries:
        for wd in weight_dtypes:
            stored = [b.stored(wd, compute, fp8_block) for b in blocks]
            upcast = _upcast_bytes(blocks, e, stage == "lora_training") if wd == "fp8" else 0
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


def _upcast_bytes(blocks: tuple[BlockBytes, ...], e: int, train: bool) -> int:
    """fp8 weights upcast to the compute dtype: one layer at a time, but in training a whole block's, which
    its backward keeps until it is done."""
    return max(b.linear if train else b.largest_linear for b in blocks) * e


def _min_blocks_peak(blocks, rest, compute, act, extra, fp8_block, train=False) -> int:
    e = DTYPE_BYTES[compute]
    stored = [b.stored("fp8", compute, fp8_block) for b in blocks]
    return rest * e + max(stored) + _upcast_bytes(blocks, e, train) + act + extra  # prefetch 0


@dataclass(frozen=True)
class _BlockRoom:
    """What the plans of the backbone's stages share: its blocks' bytes, the dtypes they may be stored in, the
    device room and the streaming settings asked for."""

    cfg: BackboneConfig
    blocks: tuple[BlockBytes, ...]
    rest: int
    compute: str
    weight_dtypes: tuple[str, ...]
    usable: int
    prefetch: int | None
    fp8_block: int

    def plan(self, stage: str, act: int, extra: int, train: bool = False) -> tuple[StagePlan | None, int]:
        """The least streaming that fits (or None), and the smallest peak any choice reaches (for the error)."""
        sp = _blocks_plan(stage, self.blocks, self.rest, self.compute, list(self.weight_dtypes), act, extra, self.usable,
                          self.prefetch, self.fp8_block)
        return sp, _min_blocks_peak(self.blocks, self.rest, self.compute, act, extra, self.fp8_block, train=train)


def _check_plan_inputs(compute_dtype: str, weight_dtype: str, vram_gb: float) -> None:
    if compute_dtype not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"compute_dtype={compute_dtype!r}; expected fp32, bf16 or fp16")
    if weight_dtype != "auto" and weight_dtype not in DTYPE_BYTES:
        raise ValueError(f"weight_dtype={weight_dtype!r}; expected auto, {', '.join(DTYPE_BYTES)}")
    if vram_gb <= 0:
        raise ValueError(f"vram_gb={vram_gb} must be positive (the GPU memory to plan for, in GiB)")


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


def _attention_choice(tokens: int, act_fn, fused_attention: bool, usable: int) -> tuple[int, int, str]:
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


def _sampling_plan(room: _BlockRoom, stage: str, tokens: int, batch: int, fused_attention: bool,
                   note: str) -> tuple[StagePlan | None, int]:
    """One backbone forward per step over `tokens` latent tokens, `batch` items (2 with CFG), and the sampler's
    own latents."""
    e = DTYPE_BYTES[room.compute]
    act, qc, desc = _attention_choice(
        tokens, lambda q, f: sampling_activation_bytes(room.cfg, batch, tokens, e, q, f), fused_attention, room.usable)
    sp, need = room.plan(stage, act, sampler_state_bytes(room.cfg, tokens))
    if sp is not None:
        sp.attention, sp.attention_chunk, sp.tokens, sp.note = desc, qc, tokens, note
    return sp, need


def _upscaling_plan(config: ModelConfig, room: _BlockRoom, latent: tuple[int, int, int], batch: int,
                    fused_attention: bool, upscale: bool) -> tuple[StagePlan | None, int]:
    """The 2x latent upscaler, then refinement sampling at 2x: the stage's peak is the larger of the two, and it
    fits only when both do."""
    t, h, w = latent
    e = DTYPE_BYTES[room.compute]
    up_w = module_params("upscaler", config.upscaler) * e
    up_a = upscaler_bytes(config.upscaler, latent, e)
    refine, need = _sampling_plan(room, "upscaling", t * h * w * 4, batch, fused_attention,
                                  "2x latent upscaler, then refinement sampling at 2x")
    if refine is not None:
        refine.weights_bytes = max(refine.weights_bytes, up_w)
        refine.peak_bytes = max(refine.peak_bytes, up_w + up_a)
        if up_w + up_a > room.usable:
            refine = None
    if refine is not None and not upscale:
        refine.note += " (runs with --upscale)"
    return refine, max(need, up_w + up_a)


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


def _lora_training_plan(config: ModelConfig, room: _BlockRoom, clip: tuple[int, int, int], batch: int, lora_rank: int,
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


def _settle_stages(plan: MemoryPlan, needs: dict[str, int], required: tuple[str, ...], reserve_gb: float,
                   vram_gb: float) -> None:
    """An optional stage that has no plan is marked "off"; a required one raises MemoryPlanError naming the
    smallest budget that fits."""
    for k, sp in plan.stages.items():
        if sp is None and k not in required:
            plan.stages[k] = StagePlan(k, "off", note=f"does not fit: needs about {needs[k] / GiB + reserve_gb:.1f} GB")
    failed = [k for k, sp in plan.stages.items() if sp is None]
    if not failed:
        return
    need_gb = max(needs[k] for k in required) / GiB + reserve_gb
    smallest = math.ceil(need_gb * 10) / 10
    names = ", ".join(s.replace("_", " ") for s in failed)
    least = " and the VAE decoded one latent frame at a time in small tiles" if "vae_decode" in failed else ""
    clip = plan.clip
    raise MemoryPlanError(
        f"vram {vram_gb:g} GB is too small for {plan.model} at {clip['width']}x{clip['height']}x{clip['frames']}: "
        f"{names} needs about {need_gb:.2f} GB even with every block streamed in fp8{least} ({reserve_gb:g} GB kept "
        f"free); the smallest budget that works is --vram {smallest:g}, or plan a smaller clip (fewer frames or pixels)"
    )


def plan_memory(
    config: ModelConfig,
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
    """
    frames, height, width = frames or config.frames, height or config.height, width or config.width
    _check_plan_inputs(compute_dtype, weight_dtype, vram_gb)
    _, t, h, w = config.vae.latent_shape(frames, height, width)
    budget = int(vram_gb * GiB)
    usable = budget - int(reserve_gb * GiB)
    plan = MemoryPlan(config.name, {"frames": frames, "height": height, "width": width, "latent": [t, h, w]}, budget, usable)
    room = _BlockRoom(config.backbone, *backbone_bytes(config.backbone), compute_dtype,
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
    _settle_stages(plan, needs, required, reserve_gb, vram_gb)
    return plan
