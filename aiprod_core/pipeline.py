"""Text -> video for scripts and the CLI: load a model, encode the prompt, sample, upscale, decode."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_into
from .config import ModelConfig, preset
from .models.backbone import HybridBackbone
from .models.upscaler import LatentUpscaler, upsample_latent
from .models.vae import CausalVideoVAE
from .sampling import SAMPLERS, denoise_sigmas, guided_velocity, ltx_sigmas, noise_like, start_latent
from .sampling.noise_guidance import sample_noise_guided, step_range
from .text import EmbeddingCache, TextEncoder, encode_cached, load_text_encoder

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "aiprod-v2-tiny.safetensors"


def default_model_path() -> Path | None:
    """The embedded default model shipped inside the package, if this install has it."""
    p = WEIGHTS_DIR / DEFAULT_MODEL
    return p if p.is_file() else None


@dataclass
class VideoModel:
    """All components of one model, built from one config."""

    config: ModelConfig
    backbone: HybridBackbone
    vae: CausalVideoVAE
    text_encoder: TextEncoder
    upscaler: LatentUpscaler | None
    source: str  # a file path, or "random init (preset NAME)"
    trained: bool


def build_model(config: ModelConfig, seed: int = 0) -> VideoModel:
    """A randomly initialised model (seeded, so two builds are identical)."""
    torch.manual_seed(seed)
    return VideoModel(
        config=config,
        backbone=HybridBackbone(config.backbone).eval(),
        vae=CausalVideoVAE(config.vae).eval(),
        text_encoder=load_text_encoder(config.text),
        upscaler=LatentUpscaler(config.upscaler).eval() if config.upscaler else None,
        source=f"random init ({config.name})",
        trained=False,
    )


def load_model(path: str | os.PathLike | None = None, preset_name: str | None = None) -> VideoModel:
    """Load a checkpoint; with neither argument, the embedded default model.

    `preset_name` without a path builds that preset with random weights (and says so): useful for
    shapes and speed, not for pictures.
    """
    if path is None and preset_name is None:
        path = default_model_path()
        if path is None:
            preset_name = "tiny"
    if path is None:
        log.warning("no trained weights: preset %r runs with RANDOM weights; the video will be noise", preset_name)
        return build_model(preset(preset_name))
    config, parts = load_checkpoint(path, require=("backbone", "vae", "text_encoder"))
    mods = components_from(config, parts, path)
    backbone, vae, text_encoder, upscaler = (mods.get(k) for k in ("backbone", "vae", "text_encoder", "upscaler"))
    return VideoModel(config, backbone, vae, text_encoder, upscaler, source=str(path), trained=True)


def components_from(config: ModelConfig, parts: dict[str, dict[str, torch.Tensor]], path: str | os.PathLike) -> dict:
    """Build each component in `parts` from the config and load its weights (checked key by key)."""
    builders = {"backbone": lambda: HybridBackbone(config.backbone), "vae": lambda: CausalVideoVAE(config.vae),
                "upscaler": lambda: LatentUpscaler(config.upscaler) if config.upscaler else None}
    out = {}
    for name, state in parts.items():
        if name == "text_encoder":
            out[name] = load_text_encoder(config.text, state)
            continue
        with torch.device("meta"):  # no random init of weights that are loaded next
            module = builders[name]()
        if module is None:
            continue
        module.to_empty(device="cpu")
        load_into(module, state, path, name)
        out[name] = module.eval()
    return out


def load_component(path: str | os.PathLike, name: str) -> tuple[ModelConfig, torch.nn.Module]:
    """One component from an all-in-one or single-component file."""
    config, parts = load_checkpoint(path, require=(name,))
    return config, components_from(config, {name: parts[name]}, path)[name]


def sample_latent(
    backbone: torch.nn.Module,
    context: torch.Tensor,
    mask: torch.Tensor,
    neg_context: torch.Tensor | None,
    neg_mask: torch.Tensor | None,
    shape: tuple[int, ...],
    *,
    steps: int = 20,
    cfg: float = 3.0,
    seed: int = 0,
    sampler: str = "euler",
    shift: float | None = None,
    denoise: float = 1.0,
    init_latent: torch.Tensor | None = None,
    callback: Callable[[dict], None] | None = None,
    flow: torch.Tensor | list[torch.Tensor | None] | None = None,
    flow_strength: float = 1.0,
    flow_start: float = 0.0,
    flow_end: float = 0.0,
    compression: tuple[int, int] = (8, 4),
) -> torch.Tensor:
    """Sample a latent of `shape` [B,C,t,h,w]; with denoise < 1, continue from `init_latent`.

    Motion guidance: `flow` [N,H,W,2] (the clip's pixel flow, or a list with one per batch item) warps the
    noise (flow.warp.warp_noise, blended with `flow_strength`); the initial noise is the warped noise when
    flow_start == 0, and the steps with flow_start <= i / steps < flow_end (after the first) pull the running
    noise estimate back onto it (sampling.noise_guidance). compression: the VAE's (spatial, temporal) one.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; choose one of {sorted(SAMPLERS)}")
    if denoise < 1.0 and init_latent is None:
        raise ValueError(f"denoise={denoise} < 1 needs an initial latent to start from")
    tokens = shape[2] * shape[3] * shape[4]

    def schedule(n: int) -> torch.Tensor:
        return ltx_sigmas(n, tokens, shift=shift)

    sigmas = schedule(steps) if denoise >= 1.0 else denoise_sigmas(schedule, steps, denoise)
    noise = noise_like(shape, seed)
    guide, guided = None, range(0)
    if flow is not None:
        from .flow.warp import warp_noise  # OpenCV is imported only when a flow is given

        guide = warp_noise(flow, shape, seed, flow_strength, *compression)
        guided = step_range(len(sigmas) - 1, flow_start, flow_end)
        noise = guide if flow_start == 0 else noise
    x = start_latent(noise, sigmas[0], init_latent if denoise < 1.0 else None)
    velocity = guided_velocity(backbone, context, mask, neg_context, neg_mask, cfg)
    if guide is not None and any(i > 0 for i in guided):
        return sample_noise_guided(SAMPLERS[sampler], velocity, x, sigmas, guide, guided, callback=callback)
    return SAMPLERS[sampler](velocity, x, sigmas, callback)


@torch.no_grad()
def decode_latent(vae: CausalVideoVAE, latent: torch.Tensor, temporal_chunk: int = 0, spatial_tile: int = 0) -> torch.Tensor:
    """LATENT [B,C,t,h,w] -> frames [B,T,H,W,3] in 0..1."""
    video = vae.decode(latent, temporal_chunk=temporal_chunk, spatial_tile=spatial_tile)  # [B,3,T,H,W]
    return ((video.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 4, 1).contiguous()


@torch.no_grad()
def generate(
    model: VideoModel,
    prompt: str,
    negative: str = "",
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    steps: int = 20,
    cfg: float = 3.0,
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
    flow: torch.Tensor | None = None,
    flow_strength: float = 1.0,
    flow_start: float = 0.0,
    flow_end: float = 0.0,
) -> torch.Tensor:
    """Generate one clip: frames [T,H,W,3] in 0..1 (twice the size when `upscale`).

    flow: optional motion guidance, a pixel FLOW [N,H,W,2] (any size: resized to the clip); see sample_latent."""
    c = model.config
    frames, height, width = frames or c.frames, height or c.height, width or c.width
    shape = (1, *c.vae.latent_shape(frames, height, width))
    if upscale and model.upscaler is None:
        raise ValueError(f"{model.source} has no upscaler; run without --upscale or load a model that has one")
    cache = cache if cache is not None else EmbeddingCache()
    context, mask = encode_cached(model.text_encoder, [prompt], cache)
    neg_context, neg_mask = encode_cached(model.text_encoder, [negative], cache) if cfg != 1.0 else (None, None)

    total = steps + (refine_steps if upscale else 0)
    bar = _progress(total, progress)
    kw = dict(cfg=cfg, seed=seed, sampler=sampler, shift=shift, callback=lambda _: bar.update(1))
    motion = dict(flow=flow, flow_strength=flow_strength, flow_start=flow_start, flow_end=flow_end,
                  compression=(c.vae.spatial_compression, c.vae.temporal_compression))
    latent = sample_latent(model.backbone, context, mask, neg_context, neg_mask, shape, steps=steps, **kw, **motion)
    if upscale:
        up = upsample_latent(model.upscaler, model.vae, latent)
        latent = sample_latent(
            model.backbone, context, mask, neg_context, neg_mask, tuple(up.shape),
            steps=refine_steps, denoise=refine_denoise, init_latent=up, **kw,
        )
    bar.close()
    return decode_latent(model.vae, latent, temporal_chunk, spatial_tile)[0]


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sampling", unit="step", disable=not enabled)
