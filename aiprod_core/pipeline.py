"""Text -> video for scripts and the CLI: encode the prompt, sample, upscale, decode.

    from aiprod_core.pipeline import generate, load_model
    video = generate(load_model(), "a red circle moving left", steps=20, cfg=3.0, seed=1)  # [T,H,W,3] in 0..1

What used to live here has a module of its own: the model and its loading in aiprod_core.model, the sampling
loop in aiprod_core.sampling.loop, image-to-video and extension inputs in aiprod_core.conditioning, decoding in
aiprod_core.models.vae, preview factors in aiprod_core.eval.preview. Their old names still answer here for one
release, each access with a DeprecationWarning (module __getattr__, looked up on access); `load_model` stays here
without one, as the library's documented entry point.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

# names that moved from here are imported under private names: the public ones answer through __getattr__ below
from .conditioning import MotionGuidance
from .conditioning import first_frames_condition as _first_frames_condition
from .config import ModelConfig
from .memory.engine import compute_device
from .memory.placement import Placement
from .model import load_model
from .model import loras_applied as _loras_applied
from .models.lora import LoRA
from .models.vae import decode_latent as _decode_latent
from .sampling.loop import sample_latent as _sample_latent
from .text import EmbeddingCache, encode_cached

if TYPE_CHECKING:
    from .model import VideoModel

__all__ = ["MotionGuidance", "generate", "load_model"]

_MOTION_KEYWORDS = ("flow", "flow_strength", "flow_start", "flow_end", "flow_pull", "warp_guidance", "warp_end")


def generate(
    model: VideoModel,
    prompt: str,
    negative: str = "",
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    steps: int | None = None,
    cfg: float | None = None,
    stg: float = 0.0,
    seed: int = 0,
    sampler: str = "euler",
    shift: float | None = None,
    upscale: bool = False,
    refine_steps: int = 8,
    refine_denoise: float = 0.4,
    temporal_chunk: int = 0,
    spatial_tile: int = 0,
    progress: bool = True,
    cache: EmbeddingCache | None = None,
    offload: str = "auto",
    vram_gb: float | None = None,
    weight_dtype: str | None = None,
    motion: MotionGuidance | None = None,
    image: torch.Tensor | None = None,
    image_strength: float = 1.0,
    fps: float | None = None,
    placement: Placement | None = None,
    refine_loras: Sequence[tuple[str | os.PathLike | LoRA, float]] = (),
    **old_motion,
) -> torch.Tensor:
    """Generate one clip: frames [T,H,W,3] in 0..1 (twice the size when `upscale`).

    offload="auto" on a CUDA machine plans the run for the free memory (or `vram_gb`) and moves each
    stage to the GPU only while it runs, streaming blocks and choosing decode chunks as planned; on the
    CPU it changes nothing. "stream" always streams the blocks; "none" runs where the model is.
    weight_dtype="fp8" stores the backbone's Linear weights in fp8 while it samples.
    motion: optional motion guidance, MotionGuidance(flow=FLOW [N,H,W,2] of any size (resized to the clip), ...).
    The seven keywords it replaces (flow=, flow_strength=, ...) still work for one release, with a warning.
    image: image-to-video, frames [T,H,W,3] in 0..1 that the clip starts with (one image: T = 1), kept by
    `image_strength`; see conditioning.first_frames_condition.

    The model's family (model.family) decides what differs: for LTX-2, its schedule and its guidance on the
    clean-latent estimate (cfg, `stg` on the block LTX-2 perturbs, rescale 0.7), and after its upscaler the
    distilled stage-2 sigmas (refine_steps and refine_denoise then unused). stg: AIPROD's model takes 0 only.
    steps, cfg: None for the model's defaults: 20 steps and cfg 3, or for a distilled LTX-2 model its 8 distilled
    sigmas without guidance (model.family.sampling_note says how given ones depart from those).
    refine_loras: (LoRA file or LoRA, strength) pairs applied in the upscaled refinement only, on top of the
    model's own LoRAs (LTX-2: a dev model refines with the distilled LoRA, as Lightricks' two-stage pipeline).
    fps: the clip's frame rate, by which LTX-2's transformer places frames in time (None: the model's; AIPROD's
    backbone does not read it).
    placement: where each stage runs, made by the caller (memory.placement.Placement; e.g. a plan made for one
    device and run on another); None: the family's, from offload, vram_gb and weight_dtype.
    """
    motion = _motion_argument(motion, old_motion)
    c, family = model.config, model.family
    frames, height, width = frames or c.frames, height or c.height, width or c.width
    shape = (1, *c.vae.latent_shape(frames, height, width))
    if upscale and model.upscaler is None:
        raise ValueError(f"{model.source} has no upscaler; run without --upscale or load a model that has one")
    refine = _refine_loras(model, refine_loras, upscale)
    stage_1 = family.sampling(model, shape, steps, cfg, stg, shift, fps)
    guided = _guided(stage_1)
    if placement is None:
        placement = family.placement(model, (frames, height, width), compute_device(offload, model.backbone),
                                     vram_gb=vram_gb, offload=offload, compute=next(model.backbone.parameters()).dtype,
                                     weight_dtype=weight_dtype or "auto", cfg=guided, upscale=upscale)
    elif (offload, vram_gb, weight_dtype) != ("auto", None, None):
        raise ValueError("generate() got placement= and offload=, vram_gb= or weight_dtype=; the placement already "
                         "says where each stage runs: give one or the others")
    prompts = _encode_prompts(model, prompt, negative if guided else None, cache, placement)

    init = keep = None
    if image is not None:
        with placement.guard("vae_encode"), placement.moved(model.vae, ("encoder",)):
            init, keep = _first_frames_condition(model.vae, image, shape, image_strength)
    bar = _progress(len(stage_1["sigmas"]) - 1, progress)
    sampling = dict(seed=seed, sampler=sampler, callback=lambda _: bar.update(1), placement=placement)
    with model.loras_applied(placement.device):
        latent = _sample_latent(model.backbone, *prompts, shape, init_latent=init, noise_mask=keep, motion=motion,
                               compression=_compression(c), **stage_1, **sampling)
    if upscale:
        up, keep = _upscaled(model, latent, placement, image, image_strength)
        stage_2 = family.refining(model, tuple(up.shape), refine_steps, refine_denoise, stage_1.get("cfg", cfg),
                                  shift, fps)
        bar.total += len(stage_2["sigmas"]) - 1
        with _loras_applied(model.backbone, (*model.loras, *refine), placement.device):
            latent = _sample_latent(model.backbone, *prompts, tuple(up.shape), init_latent=up, noise_mask=keep,
                                   stage="upscaling", **stage_2, **sampling)
    bar.close()
    temporal_chunk, spatial_tile = placement.decode_chunks(temporal_chunk, spatial_tile)
    with placement.guard("vae_decode"), placement.moved(model.vae, ("decoder",)):
        return _decode_latent(model.vae, latent.to(placement.device), temporal_chunk, spatial_tile, to_cpu=True)[0]


def _motion_argument(motion: MotionGuidance | None, old: dict) -> MotionGuidance | None:
    """generate's motion guidance, from `motion` or from the loose keywords it replaced (with a warning)."""
    unknown = sorted(set(old) - set(_MOTION_KEYWORDS))
    if unknown:
        raise TypeError(f"generate() got an unexpected keyword argument {unknown[0]!r}")
    if motion is not None and not isinstance(motion, MotionGuidance):
        raise TypeError(f"motion is a {type(motion).__name__}; expected MotionGuidance(flow=..., ...) "
                        "(from aiprod_core.conditioning)")
    if not old:
        return motion
    if motion is not None:
        raise TypeError(f"generate() got motion= and {sorted(old)}; give the motion guidance once, as motion=MotionGuidance(...)")
    warnings.warn(f"generate({', '.join(f'{k}=' for k in old)}...) is deprecated; pass motion=MotionGuidance(...) "
                  "(from aiprod_core.conditioning) with the same settings", DeprecationWarning, stacklevel=3)
    return MotionGuidance(**old)


def _guided(stage: dict) -> bool:
    """Whether a stage's guidance runs the negative prompt: CFG on the velocity, or LTX-2's guidance on x0."""
    return stage["guidance"].needs_uncond if "guidance" in stage else stage["cfg"] != 1.0


def _refine_loras(model: VideoModel, loras: Sequence[tuple[str | os.PathLike | LoRA, float]],
                  upscale: bool) -> tuple[tuple[LoRA, float], ...]:
    """The refinement's own LoRAs, files read through the model's family. The prompt is encoded once for both
    stages, so a LoRA that adapts the text encoder too cannot apply to the refinement alone."""
    if loras and not upscale:
        raise ValueError("refine_loras apply in the refinement after the 2x upscale; pass upscale=True, or give the "
                         "LoRAs to the model (with_lora_file) for the whole run")
    out = []
    for given, strength in loras:
        lora = given
        if not isinstance(given, LoRA):
            lora, text_lora = model.family.read_lora(model, given)
            if text_lora is not None:
                raise ValueError(f"{given} adapts the text encoder as well, and the prompt is encoded once for both "
                                 "stages; apply it to the whole run (with_lora_file) instead of the refinement only")
        if strength:
            out.append((lora, strength))
    return tuple(out)


def _compression(c: ModelConfig) -> tuple[int, int]:
    return c.vae.spatial_compression, c.vae.temporal_compression


def _encode_prompts(model: VideoModel, prompt: str, negative: str | None, cache: EmbeddingCache | None,
                    placement: Placement) -> tuple:
    """(context, mask, negative context, negative mask): the negative ones None when `negative` is (no CFG)."""
    if model.text_encoder is None:
        raise ValueError(f"{model.source} was loaded without a text encoder; load it with text_encoder=<file or "
                         "folder> (LTX-2: Gemma 3 12B) to encode prompts")
    if cache is None:
        cache = EmbeddingCache(directory=_embedding_dir()) if placement.planned else EmbeddingCache()
    with placement.guard("text_encoding"), model.family.text_encoding(model, placement):
        context, mask = encode_cached(model.text_encoder, [prompt], cache)
        neg_context, neg_mask = encode_cached(model.text_encoder, [negative], cache) if negative is not None else (None, None)
    return context, mask, neg_context, neg_mask


def _upscaled(model: VideoModel, latent: torch.Tensor, placement: Placement, image: torch.Tensor | None,
              image_strength: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latent at twice the size, to refine, and its noise mask (image-to-video: the first frames again,
    encoded at that size)."""
    keep = None
    with placement.guard("upscaling"), placement.moved(model.upscaler), \
            placement.moved(model.vae, ("encoder",) if image is not None else ()):
        up = model.family.upsample(model, latent.to(placement.device)).float().cpu()
        if image is not None:
            init, keep = _first_frames_condition(model.vae, image, tuple(up.shape), image_strength)
            up = torch.lerp(init, up, keep)
    return up, keep


def _embedding_dir() -> Path:
    """Where prompt embeddings are cached on disk when offloading (so the encoder need not stay loaded)."""
    root = os.environ.get("AIPROD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "aiprod")
    return Path(root) / "text-embeddings"


def _progress(total: int, enabled: bool):
    return tqdm(total=total, desc="sampling", unit="step", disable=not enabled)


# -- the old names, for one release ---------------------------------------------------------------------------

_MOVED = {
    **dict.fromkeys(("VideoModel", "build_model", "components_from", "load_component", "default_model_path",
                     "loras_applied", "DEFAULT_MODEL", "WEIGHTS_DIR"), "aiprod_core.model"),
    **dict.fromkeys(("first_frames_condition", "fit_frames", "continuation_frames", "join_clips", "EXTEND_CONTEXT"),
                    "aiprod_core.conditioning"),
    "sample_latent": "aiprod_core.sampling.loop",
    "decode_latent": "aiprod_core.models.vae",
    "preview_factors": "aiprod_core.eval.preview",
}


def _sample_latent_old_keywords(backbone, *args, **kwargs) -> torch.Tensor:
    """sample_latent as it was called from here: the motion settings as seven loose keywords, the backbone's placement
    as offload=, memory_plan= and weight_dtype=."""
    old = {k: kwargs.pop(k) for k in _MOTION_KEYWORDS if k in kwargs}
    if old:
        kwargs["motion"] = MotionGuidance(**old)
    offload, plan, weight_dtype = (kwargs.pop(k, None) for k in ("offload", "memory_plan", "weight_dtype"))
    if offload not in (None, "none"):
        kwargs["placement"] = Placement(compute_device(offload, backbone), offload,
                                        "fp8" if weight_dtype == "fp8" else "auto", plan,
                                        next(backbone.parameters()).dtype)
    return _sample_latent(backbone, *args, **kwargs)


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"aiprod_core.pipeline.{name} moved to {_MOVED[name]}.{name}; import it from there",
                  DeprecationWarning, stacklevel=2)
    if name == "sample_latent":
        return _sample_latent_old_keywords
    return getattr(importlib.import_module(_MOVED[name]), name)
