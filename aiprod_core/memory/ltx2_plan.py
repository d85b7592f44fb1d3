"""LTX-2's memory plan: the stages of AIPROD's plan and the same choices (stages.py), from LTX-2's own sizes
(ltx2_sizes.py). `plan_memory` hands an LTX-2 config here.

- text encoding: Gemma 3 12B's layers resident or streamed (bf16, or fp8 when bf16 cannot fit: 24 GB and 12 GB
  whole), the embedding table beside them, then the feature extractor and connector, for the prompt and the
  negative prompt in one batch; on the CPU when that cannot fit. Contexts are cached on disk by prompt, so Gemma
  need not stay loaded.
- sampling: LTX-2's loop runs each guidance pass (conditional, unconditional, STG) as its own forward of batch 1,
  so the peak is one forward's; the two contexts and the loop's latents stay beside it.
- upscaling: the spatial upscaler, then refinement sampling at 2x (the second stage of LTX-2's pipelines).
- VAE decode: LTX-2's decoder is not causal, so it bounds memory with overlapping tiles in time and space
  (`LTX2VideoVAE.decode`); the plan takes the fitting tiling with the least decoding work.
- LoRA training: the frozen transformer's blocks as for sampling (streamed in backward too, each block checkpointed),
  the adapters with their AdamW state, a batch of contexts and latents; Gemma and the VAE stay off the device
  (contexts and latents are computed once and cached on disk).
"""

from __future__ import annotations

import math

from ..families.ltx2.config import LTX2TransformerConfig
from ..families.ltx2.connector import ConnectorConfig
from ..families.ltx2.gemma_tokenizer import MAX_LENGTH
from ..families.ltx2.vae_config import LTX2_VIDEO_VAE, LTX2VAEConfig
from .ltx2_sizes import (
    GEMMA3_12B_SHAPE,
    connector_bytes,
    decode_tiles,
    decoder_params,
    gemma_activation_bytes,
    gemma_bytes,
    lora_state_bytes,
    sampling_activation_bytes,
    training_activation_bytes,
    transformer_bytes,
    upscaler_bytes,
    vae_decode_bytes,
)
from .stages import (
    DTYPE_BYTES,
    BlockRoom,
    GiB,
    MemoryPlan,
    MemoryPlanError,
    StagePlan,
    attention_choice,
    blocks_plan,
    check_plan_inputs,
    settle_stages,
    with_upscaler,
)

DEFAULT_CLIP = (121, 512, 768)  # frames, height, width: ltx-pipelines' PipelineParams (stage 1; stage 2 is 2x)
# (temporal chunk, spatial tile) in latent frames and px that the decode may take; 0 = whole
DECODE_TILINGS = ((0, 0), (0, 16), (0, 12), (8, 0), (8, 16), (8, 12), (0, 8), (8, 8), (6, 8), (4, 8), (4, 6),
                  (0, 4), (4, 4))
SAMPLER_LATENTS = 8  # float32 latents the loop keeps: x, noise, clean, mask and the passes' denoised predictions


def is_ltx2_config(config: object) -> bool:
    """Whether `config` describes an LTX-2 model (its `transformer` is LTX-2's video transformer config)."""
    return isinstance(getattr(config, "transformer", None), LTX2TransformerConfig)


def vae_config_of(config: object) -> LTX2VAEConfig:
    """The model's VAE config when it carries one that describes its decoder, else the released LTX-2 video VAE's
    (checked against the compression the model's `vae` states)."""
    vae = getattr(config, "vae", None)
    if isinstance(vae, LTX2VAEConfig) and vae.decoder_blocks:
        return vae
    released = LTX2VAEConfig.from_dict(LTX2_VIDEO_VAE)
    for name in ("spatial_compression", "temporal_compression", "latent_channels"):
        if vae is not None and getattr(vae, name, getattr(released, name)) != getattr(released, name):
            raise ValueError(f"the model's VAE has {name}={getattr(vae, name)} but only the released LTX-2 video VAE "
                             f"({name}={getattr(released, name)}) can be planned without its config; give the "
                             "model's LTX2VAEConfig as `vae`")
    return released


def latent_grid(vae: LTX2VAEConfig, frames: int, height: int, width: int) -> tuple[int, int, int]:
    tc, sc = vae.temporal_compression, vae.spatial_compression
    if frames < 1 or (frames - 1) % tc or height % sc or width % sc or min(height, width) < sc:
        raise ValueError(f"clip {width}x{height}x{frames} does not fit the LTX-2 VAE: frames must be 1 + {tc}k and "
                         f"height and width multiples of {sc} (e.g. 768x512x121)")
    return 1 + (frames - 1) // tc, height // sc, width // sc


# -- stages ----------------------------------------------------------------------------------------------------


def _text_encoding_plan(connector: ConnectorConfig, batch: int, compute: str, weight_dtypes: tuple[str, ...],
                        usable: int, prefetch: int | None, fp8_block: int) -> StagePlan:
    """Gemma's layers as resident as fit (the rest streamed), then the connector over its states; else the CPU."""
    e = DTYPE_BYTES[compute]
    layers, rest = gemma_bytes(GEMMA3_12B_SHAPE)
    act = gemma_activation_bytes(GEMMA3_12B_SHAPE, batch, MAX_LENGTH, e)
    cw, ca = connector_bytes(connector, batch, MAX_LENGTH, e)
    states = (GEMMA3_12B_SHAPE["num_hidden_layers"] + 1) * batch * MAX_LENGTH * connector.gemma_dim * e
    gemma = blocks_plan("text_encoding", layers, rest, compute, list(weight_dtypes), act, 0, usable, prefetch, fp8_block)
    after = cw + states + ca  # Gemma's weights gone, its states kept for the connector
    whole = (sum(b.linear + b.other for b in layers) + rest) * e
    if gemma is None or after > usable:
        return StagePlan("text_encoding", "cpu", 0, 0, 0, compute_dtype="fp32",
                         note=f"Gemma 3 12B ({whole / GiB:.0f} GB in {compute}) and the connector do not fit even "
                              "streamed: run on the CPU; contexts cached on disk by prompt hash")
    gemma.peak_bytes = max(gemma.peak_bytes, after)
    gemma.note = (f"Gemma 3 12B: {gemma.blocks_resident} of {len(layers)} layers resident, {gemma.blocks_streamed} "
                  f"streamed in {gemma.weight_dtype} (prefetch {gemma.prefetch}), then the connector "
                  f"({cw / GiB:.1f} GB); prompt and negative prompt, {MAX_LENGTH} tokens; contexts cached on disk by "
                  "prompt hash")
    return gemma


def _sampling_plan(room: BlockRoom, stage: str, grid: tuple[int, int, int], contexts: int, fused_attention: bool,
                   note: str) -> tuple[StagePlan | None, int]:
    """One forward of batch 1 at a time, the contexts and the loop's latents beside it."""
    cfg: LTX2TransformerConfig = room.cfg
    e = DTYPE_BYTES[room.compute]
    tokens = math.prod(grid)
    act, qc, desc = attention_choice(
        tokens, lambda q, f: sampling_activation_bytes(cfg, grid, e, MAX_LENGTH, f, q), fused_attention, room.usable)
    text = cfg.caption_channels if cfg.caption_channels is not None else cfg.cross_attention_dim
    extra = contexts * MAX_LENGTH * text * 4 + SAMPLER_LATENTS * cfg.in_channels * tokens * 4
    sp, need = room.plan(stage, act, extra)
    if sp is not None:
        sp.attention, sp.attention_chunk, sp.tokens, sp.note = desc, qc, tokens, note
    return sp, need


def _upscaling_plan(config: object, room: BlockRoom, grid: tuple[int, int, int], contexts: int, fused_attention: bool,
                    upscale: bool) -> tuple[StagePlan | None, int]:
    """The spatial upscaler, then refinement at 2x: the larger peak of the two, fitting only when both do."""
    t, h, w = grid
    up_w, up_a = upscaler_bytes(config.upscaler, grid, DTYPE_BYTES[room.compute])
    refine, need = _sampling_plan(room, "upscaling", (t, 2 * h, 2 * w), contexts, fused_attention,
                                  "spatial upscaler x2, then refinement sampling at 2x")
    return with_upscaler(refine, need, up_w, up_a, room.usable, upscale)


def _lora_training_plan(room: BlockRoom, clip: tuple[int, int, int], grid: tuple[int, int, int], batch: int,
                        rank: int, fused_attention: bool) -> tuple[StagePlan | None, int]:
    """One step of `batch` clips: the traced forward and backward beside the adapters' state, the contexts and the
    step's latents (clean, noise, noisy, float32)."""
    cfg: LTX2TransformerConfig = room.cfg
    tokens = math.prod(grid)
    act = training_activation_bytes(cfg, grid, DTYPE_BYTES[room.compute], MAX_LENGTH, batch, rank,
                                    fused_attention=fused_attention)
    text = cfg.caption_channels if cfg.caption_channels is not None else cfg.cross_attention_dim
    extra = lora_state_bytes(cfg, rank) + batch * (MAX_LENGTH * text + 3 * cfg.in_channels * tokens) * 4
    lp, need = room.plan("lora_training", act, extra, train=True)
    if lp is not None:
        frames, height, width = clip
        lp.gradient_checkpointing, lp.tokens = True, tokens
        lp.attention = "fused SDPA" if fused_attention else "math SDPA"
        lp.note = (f"rank {rank}, clip {width}x{height}x{frames}" + (f", batch {batch}" if batch > 1 else "")
                   + "; Gemma and the VAE stay in CPU memory: contexts and latents are computed once and cached")
    return lp, need


def _vae_decode_plan(vae: LTX2VAEConfig, grid: tuple[int, int, int], compute: str, usable: int,
                     note: str) -> tuple[StagePlan | None, int]:
    """The tiling that fits beside the decoder's weights with the least decoding work (tiles overlap, so smaller
    ones decode more latent voxels, and blend seams); when none fits, the need is that of the last tiling tried."""
    e = DTYPE_BYTES[compute]
    weights = decoder_params(vae) * e
    # tiles are taken even where the whole clip would fit, but for a few latent frames: a margin for convolution
    # workspaces that grow with the tensors (as plan.plan_vae_decode chunks AIPROD's decodes)
    options = [(chunk, tile) for chunk, tile in DECODE_TILINGS if (chunk or tile or grid[0] <= 4)
               and not (chunk and chunk >= grid[0]) and not (tile and tile >= max(grid[1:]))]
    by_work = sorted(options, key=lambda o: decode_tiles(grid, *o)[::2])  # (work, tiles): the fewest tiles on a tie
    for chunk, tile in by_work:
        act = vae_decode_bytes(vae, grid, chunk, tile, e)
        if weights + act <= usable:
            tiled = f", in tiles of {chunk or 'all'} latent frames x {tile or 'all'} latent px" if chunk or tile else ""
            return StagePlan("vae_decode", "gpu", weights + act, weights, act, weight_dtype=compute,
                             compute_dtype=compute, vae_temporal_chunk=chunk, vae_spatial_tile=tile,
                             note=note + tiled), 0
    return None, weights + vae_decode_bytes(vae, grid, *options[-1], e)


def _required(required: tuple[str, ...] | None, upscale: bool, train: bool, has_upscaler: bool) -> tuple[str, ...]:
    if required is not None:
        return required
    if upscale and not has_upscaler:
        raise MemoryPlanError("upscale=True but this LTX-2 model has no spatial upscaler; give its file "
                              "(ltx-2-spatial-upscaler-x2-1.0.safetensors) or plan without --upscale")
    return ("sampling", "vae_decode", *(("upscaling",) if upscale else ()), *(("lora_training",) if train else ()))


def plan_ltx2_memory(
    config: object,
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
    fused_attention: bool = True,
    reserve_gb: float = 1.0,
    train: bool = False,
    required: tuple[str, ...] | None = None,
) -> MemoryPlan:
    """Plan text -> video (and LoRA training) for an LTX-2 model inside `vram_gb`, as `plan.plan_memory` plans AIPROD's models.

    config: an LTX-2 model config: `transformer` (LTX2TransformerConfig), `vae` (an LTX2VAEConfig, or anything
    else for the released VAE), `upscaler` (LTX2UpsamplerConfig or None), and optionally `name`, `connector`
    (ConnectorConfig; default LTX-2 19B's) and the default clip `frames`, `height`, `width` (768x512x121). cfg: the
    negative prompt's context too (the passes themselves run one at a time). train_clip (frames, height, width)
    and train_batch: LoRA training's clips (default: the clip, one a step). Raises MemoryPlanError naming the
    smallest budget when a required stage (sampling, decode, upscaling with `upscale`) cannot fit.
    """
    check_plan_inputs(compute_dtype, weight_dtype, vram_gb)
    upscaler = getattr(config, "upscaler", None)
    required = _required(required, upscale, train, upscaler is not None)
    frames = frames or getattr(config, "frames", DEFAULT_CLIP[0])
    height = height or getattr(config, "height", DEFAULT_CLIP[1])
    width = width or getattr(config, "width", DEFAULT_CLIP[2])
    vae = vae_config_of(config)
    grid = latent_grid(vae, frames, height, width)
    budget = int(vram_gb * GiB)
    usable = budget - int(reserve_gb * GiB)
    plan = MemoryPlan(getattr(config, "name", "ltx-2"),
                      {"frames": frames, "height": height, "width": width, "latent": list(grid)}, budget, usable)
    dtypes = (compute_dtype, "fp8") if weight_dtype == "auto" else (weight_dtype,)
    room = BlockRoom(config.transformer, *transformer_bytes(config.transformer), compute_dtype, dtypes, usable,
                     prefetch, fp8_block)
    contexts = 2 if cfg else 1
    needs: dict[str, int] = {}
    connector = getattr(config, "connector", None) or ConnectorConfig()
    plan.stages["text_encoding"] = _text_encoding_plan(connector, contexts, compute_dtype, dtypes, usable, prefetch,
                                                       fp8_block)
    passes = "3 passes a step (conditional, unconditional, STG)" if cfg else "1 pass a step"
    plan.stages["sampling"], needs["sampling"] = _sampling_plan(room, "sampling", grid, contexts, fused_attention,
                                                                f"{passes}, batch 1 each")
    if upscaler is not None:
        plan.stages["upscaling"], needs["upscaling"] = _upscaling_plan(config, room, grid, contexts, fused_attention,
                                                                       upscale)
    t, h, w = grid
    decoded = (t, 2 * h, 2 * w) if upscale else grid
    plan.stages["vae_decode"], needs["vae_decode"] = _vae_decode_plan(
        vae, decoded, compute_dtype, usable, "tiles overlap 3 latent frames and 2 latent px and blend"
        + (" (2x clip)" if upscale else ""))
    train_clip = train_clip or (frames, height, width)
    plan.stages["lora_training"], needs["lora_training"] = _lora_training_plan(
        room, train_clip, latent_grid(vae, *train_clip), train_batch, lora_rank, fused_attention)
    settle_stages(plan, needs, required, reserve_gb, vram_gb, least_decode="in tiles of 4 latent frames x 4 latent px")
    return plan
