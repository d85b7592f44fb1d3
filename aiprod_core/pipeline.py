"""Text -> video for scripts and the CLI: load a model, encode the prompt, sample, upscale, decode."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_into
from .config import ModelConfig, preset
from .memory.engine import backbone_stage, check_offload, compute_device, on_device, plan_for, stage_guard
from .models.backbone import HybridBackbone
from .models.lora import LoRA, adapted_text_encoder, apply_loras, read_lora
from .models.upscaler import LatentUpscaler, upsample_latent
from .models.vae import VAE_CHUNK, CausalVideoVAE
from .sampling import SAMPLERS, denoise_sigmas, guided_velocity, ltx_sigmas, noise_like, start_latent
from .sampling.noise_guidance import sample_noise_guided, step_range
from .sampling.noise_mask import keep_latent, kept_velocity, latent_noise_mask
from .sampling.warp_guidance import warp_guided_velocity
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
    loras: tuple[tuple[LoRA, float], ...] = field(default=())  # backbone adapters applied while sampling

    def with_text_loras(self, loras: list[tuple[LoRA | None, float]]) -> VideoModel:
        """The same model reading prompts through these LoRAs' text-encoder adapters (None, or strength 0:
        nothing to apply); every weight is shared, nothing is copied."""
        text_encoder = adapted_text_encoder(self.text_encoder, loras)
        return self if text_encoder is self.text_encoder else dataclasses.replace(self, text_encoder=text_encoder)

    def with_lora(self, lora: LoRA, strength: float = 1.0, text_lora: LoRA | None = None) -> VideoModel:
        """The same model with a LoRA: its backbone adapters apply while sampling, its text-encoder adapters
        (if any) while encoding prompts. Nothing is merged or copied, and LoRAs stack."""
        model = self.with_text_loras([(text_lora, strength)])
        return dataclasses.replace(model, loras=(*self.loras, (lora, strength))) if strength else model

    def with_lora_file(self, path: str | os.PathLike, strength: float = 1.0) -> VideoModel:
        """with_lora for a LoRA file written by the trainer (or any file in that layout)."""
        lora, text_lora = read_lora(path, self.backbone, self.text_encoder)
        return self.with_lora(lora, strength, text_lora)

    def loras_applied(self, device: torch.device | None = None) -> contextlib.AbstractContextManager[None]:
        return loras_applied(self.backbone, self.loras, device)


@contextlib.contextmanager
def loras_applied(backbone: torch.nn.Module, loras, device: torch.device | None = None) -> Iterator[None]:
    """Within the block, `backbone` answers with these (LoRA, strength) pairs, their adapters on `device` (where
    they stay while the backbone moves or streams; None: where they are)."""
    with contextlib.ExitStack() as stack:
        for lora, _ in loras if device is not None else ():
            stack.enter_context(on_device(lora, device))
        stack.enter_context(apply_loras(backbone, list(loras)))
        yield


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


def load_model(path: str | os.PathLike | None = None, preset_name: str | None = None,
               dtype: torch.dtype | None = None, vae_dtype: torch.dtype | None = None) -> VideoModel:
    """Load a checkpoint; with neither argument, the embedded default model.

    `preset_name` without a path builds that preset with random weights (and says so): useful for
    shapes and speed, not for pictures. dtype: the backbone's and upscaler's weights (None: float32, as
    trained), vae_dtype the VAE's (None: as dtype); the text encoder keeps float32 (its states are cast
    where the backbone reads them). memory.engine.precision_dtype picks them for a device.
    """
    model = _load_model(path, preset_name)
    for module, dt in ((model.backbone, dtype), (model.upscaler, dtype), (model.vae, vae_dtype or dtype)):
        if module is not None and dt is not None:
            module.to(dt)
    return model


def _load_model(path: str | os.PathLike | None, preset_name: str | None) -> VideoModel:
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
        # meta skips the random init of weights that are loaded next, which pays off for a big model; a small one
        # initialises faster (the tiny model: 40 ms) than PyTorch imports its compiler stack (0.7 s) to run the
        # init ops on meta tensors. fork_rng: loading leaves the global random state as it was.
        small = sum(t.numel() for t in state.values()) < 20_000_000
        with torch.random.fork_rng(devices=[]), contextlib.nullcontext() if small else torch.device("meta"):
            module = builders[name]()
        if module is None:
            continue
        if not small:
            module.to_empty(device="cpu")
        load_into(module, state, path, name)
        out[name] = module.eval()
    return out


def load_component(path: str | os.PathLike, name: str,
                   dtype: torch.dtype | None = None) -> tuple[ModelConfig, torch.nn.Module]:
    """One component from an all-in-one or single-component file (in `dtype`; None: float32)."""
    config, parts = load_checkpoint(path, require=(name,))
    module = components_from(config, {name: parts[name]}, path)[name]
    return config, module.to(dtype) if dtype is not None else module


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
    offload: str = "none",
    memory_plan=None,
    stage: str = "sampling",
    weight_dtype: str | None = None,
    flow: torch.Tensor | list[torch.Tensor | None] | None = None,
    flow_strength: float = 1.0,
    flow_start: float = 0.0,
    flow_end: float = 0.0,
    flow_pull: float = 1.0,
    warp_guidance: float = 1.0,
    warp_end: float = 0.75,
    compression: tuple[int, int] = (8, 4),
    noise_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample a latent of `shape` [B,C,t,h,w]; with denoise < 1, continue from `init_latent`.

    noise_mask (1 = generate, 0 = keep; sampling.noise_mask.latent_noise_mask lists the shapes): the positions
    it keeps stay on `init_latent` (image-to-video: latent frame 0 kept; inpainting), at any denoise.

    offload: "none" runs where the backbone is; "auto" follows `memory_plan` (a MemoryPlan, its `stage`)
    on a CUDA device; "stream" streams the blocks (on the CPU too; fp8 storage with weight_dtype="fp8").
    The latent comes back on the compute device.

    Motion guidance: `flow` [N,H,W,2] (the clip's pixel flow, or a list with one per batch item) warps the
    noise (flow.warp.warp_noise, blended with `flow_strength`); the initial noise is the warped noise when
    flow_start == 0, and the steps with flow_start <= i / steps < flow_end (after the first) pull the running
    noise estimate back onto it by `flow_pull` (sampling.noise_guidance). With warp_guidance > 0, the steps
    with i / steps < warp_end also move the clean-latent estimate along the flow (sampling.warp_guidance).
    compression: the VAE's (spatial, temporal) one.
    """
    check_offload(offload)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; choose one of {sorted(SAMPLERS)}")
    if denoise < 1.0 and init_latent is None:
        raise ValueError(f"denoise={denoise} < 1 needs an initial latent to start from")
    if noise_mask is not None:
        if init_latent is None:
            raise ValueError("a noise mask keeps part of a given latent; pass that latent as init_latent")
        if tuple(init_latent.shape) != tuple(shape):
            raise ValueError(f"initial latent has shape {tuple(init_latent.shape)}; expected {tuple(shape)}")
        noise_mask = latent_noise_mask(noise_mask, shape)
    tokens = shape[2] * shape[3] * shape[4]

    def schedule(n: int) -> torch.Tensor:
        return ltx_sigmas(n, tokens, shift=shift)

    sigmas = schedule(steps) if denoise >= 1.0 else denoise_sigmas(schedule, steps, denoise)
    noise = noise_like(shape, seed)
    guide, guided = None, range(0)
    if flow is not None:
        from .flow.warp import warp_noise  # OpenCV is imported only when a flow is given

        if not 0.0 <= flow_pull <= 1.0:
            raise ValueError(f"flow_pull={flow_pull}; expected 0..1 (the fraction of the way each guided step pulls the noise)")
        guide = warp_noise(flow, shape, seed, flow_strength, *compression)
        guided = step_range(len(sigmas) - 1, flow_start, flow_end)
        noise = guide if flow_start == 0 else noise
    if not 0.0 <= warp_guidance <= 1.0:
        raise ValueError(f"warp_guidance={warp_guidance}; expected 0..1 (how far each frame is pulled onto the warped one)")
    warp_flows = None  # per batch item, the latent flow from the first frame to each later one
    if flow is not None and warp_guidance > 0:
        from .flow.warp import latent_flow

        def to_latent(f):
            return None if f is None else latent_flow(f, *shape[2:], *compression)

        warp_flows = [to_latent(f) for f in flow] if isinstance(flow, (list, tuple)) else [to_latent(flow)] * shape[0]
        last = len(step_range(len(sigmas) - 1, 0.0, warp_end))  # steps 0..last-1 are guided
        warp_sigma_min = float(sigmas[last - 1]) if last else float("inf")
    x = start_latent(noise, sigmas[0], init_latent.cpu() if denoise < 1.0 else None)

    def run(velocity, x):
        if noise_mask is not None:  # inside warp guidance, which then carries the kept first frame exactly
            velocity = kept_velocity(velocity, init_latent, noise, noise_mask)
            return keep_latent(run_guided(velocity, x), init_latent, noise_mask)
        return run_guided(velocity, x)

    def run_guided(velocity, x):
        if warp_flows is not None:
            velocity = warp_guided_velocity(velocity, warp_flows, warp_guidance, warp_sigma_min)
        if guide is not None and any(i > 0 for i in guided):
            return sample_noise_guided(SAMPLERS[sampler], velocity, x, sigmas, guide, guided, flow_pull, callback)
        return SAMPLERS[sampler](velocity, x, sigmas, callback)

    if offload == "none":
        velocity = guided_velocity(backbone, context, mask, neg_context, neg_mask, cfg)
        with stage_guard(stage):
            return run(velocity, x.to(context.device))
    device = compute_device(offload, backbone)
    sp = memory_plan.stages.get(stage) if memory_plan is not None else None

    def model(x, sigma, ctx, m):
        return backbone(x, sigma.to(x.device), ctx, m)

    def dev(t):
        return None if t is None else t.to(device)

    with stage_guard(stage, memory_plan), backbone_stage(backbone, device, sp, offload, weight_dtype):
        velocity = guided_velocity(model, dev(context), dev(mask), dev(neg_context), dev(neg_mask), cfg)
        return run(velocity, x.to(device))


@torch.no_grad()
def decode_latent(vae: CausalVideoVAE, latent: torch.Tensor, temporal_chunk: int = 0, spatial_tile: int = 0,
                  to_cpu: bool = False) -> torch.Tensor:
    """LATENT [B,C,t,h,w] -> frames [B,T,H,W,3] in 0..1 (converted on the CPU with `to_cpu`)."""
    video = vae.decode(latent, temporal_chunk=temporal_chunk, spatial_tile=spatial_tile)  # [B,3,T,H,W]
    if to_cpu:
        video = video.cpu()  # the float copies below would otherwise take device memory
    return ((video.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 4, 1).contiguous()


@torch.no_grad()
def preview_factors(vae: CausalVideoVAE, images: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent-to-RGB preview factors ([C,3], [3]) fitted on still frames of the synthetic world."""
    from .models.vae import latent_rgb_factors
    from .train.data import video_tensor
    from .train.world import MOTIONS, WorldSpec, make_clip

    side = 8 * vae.cfg.spatial_compression
    spec = WorldSpec(frames=1, height=side, width=side, objects=(1, 2), motions=MOTIONS, sizes=("normal", "large"))
    stills = torch.stack([video_tensor(make_clip(i, spec).frames)[:, 0] for i in range(images)])
    return latent_rgb_factors(vae, stills)


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
    offload: str = "auto",
    vram_gb: float | None = None,
    weight_dtype: str | None = None,
    flow: torch.Tensor | None = None,
    flow_strength: float = 1.0,
    flow_start: float = 0.0,
    flow_end: float = 0.0,
    flow_pull: float = 1.0,
    warp_guidance: float = 1.0,
    warp_end: float = 0.75,
    image: torch.Tensor | None = None,
    image_strength: float = 1.0,
) -> torch.Tensor:
    """Generate one clip: frames [T,H,W,3] in 0..1 (twice the size when `upscale`).

    offload="auto" on a CUDA machine plans the run for the free memory (or `vram_gb`) and moves each
    stage to the GPU only while it runs, streaming blocks and choosing decode chunks as planned; on the
    CPU it changes nothing. "stream" always streams the blocks; "none" runs where the model is.
    weight_dtype="fp8" stores the backbone's Linear weights in fp8 while it samples.
    flow: optional motion guidance, a pixel FLOW [N,H,W,2] (any size: resized to the clip); see sample_latent.
    image: image-to-video, frames [T,H,W,3] in 0..1 that the clip starts with (one image: T = 1), kept by
    `image_strength`; see first_frames_condition.
    """
    c = model.config
    frames, height, width = frames or c.frames, height or c.height, width or c.width
    shape = (1, *c.vae.latent_shape(frames, height, width))
    if upscale and model.upscaler is None:
        raise ValueError(f"{model.source} has no upscaler; run without --upscale or load a model that has one")
    device = compute_device(offload, model.backbone)
    compute = next(model.backbone.parameters()).dtype
    plan = plan_for(c, frames, height, width, device, vram_gb, compute, weight_dtype, offload, cfg != 1.0, upscale)
    if cache is None:
        cache = EmbeddingCache(directory=_embedding_dir()) if plan is not None else EmbeddingCache()
    text_dev = device if plan is not None and plan.stages["text_encoding"].where == "gpu" else None
    with stage_guard("text_encoding", plan), on_device(model.text_encoder if text_dev else None, device):
        context, mask = encode_cached(model.text_encoder, [prompt], cache)
        neg_context, neg_mask = encode_cached(model.text_encoder, [negative], cache) if cfg != 1.0 else (None, None)

    init = keep = None
    if image is not None:
        with stage_guard("vae_encode", plan), on_device(model.vae, device, ("encoder",)):
            init, keep = first_frames_condition(model.vae, image, shape, image_strength)
    total = steps + (refine_steps if upscale else 0)
    bar = _progress(total, progress)
    kw = dict(cfg=cfg, seed=seed, sampler=sampler, shift=shift, callback=lambda _: bar.update(1), offload=offload,
              memory_plan=plan, weight_dtype=weight_dtype)
    motion = dict(flow=flow, flow_strength=flow_strength, flow_start=flow_start, flow_end=flow_end,
                  flow_pull=flow_pull, warp_guidance=warp_guidance, warp_end=warp_end, compression=(c.vae.spatial_compression, c.vae.temporal_compression))
    with model.loras_applied(device):
        latent = sample_latent(model.backbone, context, mask, neg_context, neg_mask, shape, steps=steps,
                               init_latent=init, noise_mask=keep, **kw, **motion)
        if upscale:
            with stage_guard("upscaling", plan), on_device(model.upscaler, device), \
                    on_device(model.vae, device, ("encoder",) if image is not None else ()):
                up = upsample_latent(model.upscaler, model.vae, latent.to(device)).float().cpu()
                if image is not None:  # the first frames again, encoded at twice the size
                    init, keep = first_frames_condition(model.vae, image, tuple(up.shape), image_strength)
                    up = torch.lerp(init, up, keep)
            latent = sample_latent(
                model.backbone, context, mask, neg_context, neg_mask, tuple(up.shape), steps=refine_steps,
                denoise=refine_denoise, init_latent=up, noise_mask=keep, stage="upscaling", **kw,
            )
    bar.close()
    if plan is not None and not (temporal_chunk or spatial_tile):
        temporal_chunk, spatial_tile = plan.stages["vae_decode"].vae_temporal_chunk, plan.stages["vae_decode"].vae_spatial_tile
    with stage_guard("vae_decode", plan), on_device(model.vae, device, ("decoder",)):
        return decode_latent(model.vae, latent.to(device), temporal_chunk, spatial_tile, to_cpu=True)[0]


@torch.no_grad()
def first_frames_condition(vae: CausalVideoVAE, frames: torch.Tensor, shape: tuple[int, ...],
                           strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-to-video: the initial latent and the noise mask that make a clip of latent `shape` start with `frames`.

    frames: [T,H,W,3] in 0..1 (one image: T = 1; [H,W,3] is taken as one), any size: centre-cropped to the clip's
    aspect and resized. The first 1 + k * temporal compression of them (as many as the clip holds) are encoded;
    the causal VAE gives them latent frames of their own, which the mask keeps (0) while the rest is generated.
    strength < 1 keeps them that much (mask 1 - strength): 0 is text-to-video.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"image strength {strength} is out of range; expected 0..1 (1 keeps the first frames as given)")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"image has shape {tuple(frames.shape)}; expected frames [T,H,W,3] (or one image [H,W,3]) in 0..1")
    _, _, t, h, w = shape
    tc, sc = vae.cfg.temporal_compression, vae.cfg.spatial_compression
    n = min(1 + (frames.shape[0] - 1) // tc, t)  # latent frames the given frames fill
    video = fit_frames(frames[: 1 + (n - 1) * tc].float(), h * sc, w * sc)
    # on the encoder's device a few latent frames at a time: a long clip to continue stays in CPU memory
    z = vae.encode(video.permute(3, 0, 1, 2)[None] * 2 - 1, temporal_chunk=VAE_CHUNK).float().cpu()
    init = torch.zeros(shape)
    init[:, :, :n] = z
    keep = torch.ones(1, 1, t, h, w)
    keep[:, :, :n] = 1 - strength
    return init, keep


EXTEND_CONTEXT = 2  # latent frames after the first that an extension starts from: its motion is read from them


def continuation_frames(frames: torch.Tensor, temporal_compression: int, context: int = EXTEND_CONTEXT) -> torch.Tensor:
    """Video extension: the last 1 + context x temporal compression frames of a clip [T,H,W,3], which a clip that
    continues it starts with (image-to-video keeps them: the causal VAE gives them 1 + context latent frames of
    their own). A shorter clip gives its last 1 + k x temporal compression frames. With context 1 (the last 5
    frames for tiny) the shipped model continued the world clips' direction in 38 of 48, with 2 in 47 of 48."""
    if context < 0:
        raise ValueError(f"context={context}; expected 0 or more latent frames after the last frame")
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise ValueError(f"clip has shape {tuple(frames.shape)}; expected frames [T,H,W,3]")
    n = 1 + min(context, (frames.shape[0] - 1) // temporal_compression) * temporal_compression
    return frames[-n:]


def join_clips(first: torch.Tensor, second: torch.Tensor, overlap: int) -> torch.Tensor:
    """Video extension: `first` [T1,H1,W1,3] then `second` [T2,H,W,3] without its first `overlap` frames, which
    repeat the end of `first`; `first` (0..1, or uint8 0..255) is centre-cropped and resized to the size of
    `second` a few frames at a time, so a long uint8 clip is never held in float32 at its own size."""
    if first.ndim != 4 or second.ndim != 4:
        raise ValueError(f"clips have shapes {tuple(first.shape)} and {tuple(second.shape)}; expected frames [T,H,W,3]")
    if not 0 <= overlap < second.shape[0]:
        raise ValueError(f"overlap={overlap} frames of a {second.shape[0]}-frame continuation; expected 0..{second.shape[0] - 1} "
                         "(the frames it starts with that repeat the end of the first clip)")
    scale = 255.0 if first.dtype == torch.uint8 else 1.0
    fitted = [fit_frames(first[i : i + 16].float() / scale, *second.shape[1:3]) for i in range(0, len(first), 16)]
    return torch.cat([*fitted, second[overlap:].float()])


def fit_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Frames [T,H,W,3] centre-cropped to the aspect of `width` x `height` and resized to it (a note in the log)."""
    import torch.nn.functional as F

    from .video_io import centre_crop

    _, fh, fw, _ = frames.shape
    if (fh, fw) == (height, width):
        return frames
    x = centre_crop(frames.permute(0, 3, 1, 2), height, width)
    log.info("frames of %dx%d centre-cropped to %dx%d and resized to the clip's %dx%d", fw, fh, x.shape[-1],
             x.shape[-2], width, height)
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


def _embedding_dir() -> Path:
    """Where prompt embeddings are cached on disk when offloading (so the encoder need not stay loaded)."""
    root = os.environ.get("AIPROD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "aiprod")
    return Path(root) / "text-embeddings"


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sampling", unit="step", disable=not enabled)
