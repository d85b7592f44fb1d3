"""The hybrid sampler: rectified flow with CFG, LoRAs, ComfyUI progress and interrupt."""

from __future__ import annotations

import contextlib
import dataclasses

import torch

from aiprod_core.conditioning import MotionGuidance
from aiprod_core.memory.placement import Placement
from aiprod_core.memory.plan import MemoryPlanError
from aiprod_core.model import AIPROD, loras_applied
from aiprod_core.sampling import SAMPLERS
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.sampling.schedules import denoise_sigmas
from aiprod_core.text import from_conditioning

from . import host
from .handles import ModelPatch


def _context(cond, model: ModelPatch, which: str, batch: int, device):
    hidden, mask = from_conditioning(cond)
    want = model.text_dim
    if hidden.shape[-1] != want:
        raise ValueError(
            f"{which} conditioning is {hidden.shape[-1]} wide but this model's text encoder width is {want}; "
            f"encode the prompt with the text encoder that goes with {model.source}"
        )
    if hidden.shape[0] not in (1, batch):
        raise ValueError(f"{which} conditioning has batch {hidden.shape[0]}; expected 1 or the latent batch {batch}")
    hidden, mask = hidden.expand(batch, -1, -1), mask.expand(batch, -1)
    return hidden.to(device=device, dtype=torch.float32), mask.to(device)


def _room(model: ModelPatch, clip: tuple[int, int, int], cfg: bool) -> int:
    """What to ask ComfyUI to free before sampling, as its own models ask: room for sampling with every block resident
    (what a GPU of this size would plan), or the backbone's weights where nothing is planned."""
    need = host.module_bytes(model.backbone)
    total = host.total_memory_gb()
    if total:
        with contextlib.suppress(MemoryPlanError):  # then the placement, in the memory there is, says what fits
            whole = Placement.build(model.config, clip, host.torch_device(), vram_gb=total, offload="auto",
                                    compute=next(model.backbone.parameters()).dtype, cfg=cfg)
            need = whole.stage("sampling").peak_bytes
    return need


class SpatioTemporalGuidance:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("AIPROD_MODEL", {"tooltip": "An LTX-2 model (AIPROD's hybrid blocks cannot skip their "
                                                  "self-attention)"}),
            "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.1, "tooltip":
                                "How far each step moves away from the model's answer with one block's self-attention "
                                "skipped; LTX-2's pipelines use 1 beside CFG 3; 0 = off"}),
        }}

    RETURN_TYPES = ("AIPROD_MODEL",)
    FUNCTION = "apply"
    CATEGORY = "AIPROD"
    DESCRIPTION = ("Spatio-temporal guidance (STG) for the Hybrid Sampler, as LTX-2 samples: the model with it "
                   "steers away from its own answer without the self-attention of the block LTX-2 perturbs.")

    def apply(self, model: ModelPatch, scale):
        if scale and model.family is AIPROD:
            raise ValueError(f"STG scale {scale}: AIPROD's blocks cannot skip their self-attention, which STG "
                             "perturbs; use it with an LTX-2 model, or set scale 0")
        return (dataclasses.replace(model, stg=float(scale)),)


class HybridSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("AIPROD_MODEL", {"tooltip": "The backbone, with any LoRAs from LoRA loaders"}),
            "positive": ("CONDITIONING", {"tooltip": "What the clip should show"}),
            "negative": ("CONDITIONING", {"tooltip": "What to steer away from (an empty prompt is fine)"}),
            "latent": ("LATENT", {"tooltip": "An empty video latent, an image-to-video one (its noise mask keeps the "
                                             "first frames), or an encoded/upscaled one with denoise < 1"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**63 - 1, "control_after_generate": True,
                             "tooltip": "The same seed gives the same clip"}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 200, "tooltip": "Sampling steps"}),
            "cfg": ("FLOAT", {"default": 3.0, "min": 1.0, "max": 20.0, "step": 0.1,
                              "tooltip": "Classifier-free guidance scale; 1 turns it off (twice as fast)"}),
            "sampler": (sorted(SAMPLERS), {"default": "euler", "tooltip": "euler: one model call per step; heun: two, more accurate"}),
            "shift": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                "tooltip": "Sigma shift; 0 = LTX's rule from the token count"}),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01,
                                  "tooltip": "1 starts from noise; less keeps that much of the input latent"}),
        }, "optional": {
            "flow": ("AIPROD_FLOW", {"tooltip": "Motion to follow (Flow Extractor or Camera Motion); resized to the clip"}),
            "flow_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                        "tooltip": "How much of the noise is warped along the flow; 0 = none"}),
            "flow_start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                     "tooltip": "Fraction of the steps where guidance starts; 0 warps the initial noise"}),
            "flow_end": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "Steps before this fraction keep the noise on the warped noise; 0 = initial noise only"}),
            "warp_guidance": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                        "tooltip": "How far each step moves the clip's frames onto the first frame carried along the flow; 0 = off"}),
            "warp_end": ("FLOAT", {"default": 0.75, "min": 0.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "Fraction of the steps that warp guidance applies to"}),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "AIPROD"

    def sample(self, model: ModelPatch, positive, negative, latent, seed, steps, cfg, sampler, shift, denoise,
               flow=None, flow_strength=1.0, flow_start=0.0, flow_end=0.0, warp_guidance=1.0, warp_end=0.75):
        init = latent["samples"].float()
        if init.ndim != 5:
            raise ValueError(f"latent has shape {tuple(init.shape)}; expected a video latent [B,C,t,h,w] from AIPROD Empty Latent Video")
        c = model.in_channels
        if init.shape[1] != c:
            raise ValueError(f"latent has {init.shape[1]} channels but the model takes {c}; use this model's VAE")
        keep = latent.get("noise_mask")  # AIPROD Image To Video, or core's Set Latent Noise Mask: 0 = keep
        motion = MotionGuidance(flow=flow, flow_strength=flow_strength, flow_start=flow_start, flow_end=flow_end,
                                warp_guidance=warp_guidance, warp_end=warp_end)
        backbone = model.backbone
        v = model.config.vae
        clip = (1 + (init.shape[2] - 1) * v.temporal_compression, init.shape[3] * v.spatial_compression,
                init.shape[4] * v.spatial_compression)
        host.free_memory(_room(model, clip, cfg != 1.0))
        budget = host.memory_budget()
        placement = model.family.placement(model, clip, host.torch_device(), vram_gb=budget.vram_gb,
                                           offload=budget.offload, compute=next(backbone.parameters()).dtype,
                                           cfg=cfg != 1.0)
        fps = latent.get("fps") or model.config.fps
        schedule = _schedule(model, tuple(init.shape), steps, cfg, model.stg, shift, denoise, fps)
        ctx, mask = _context(positive, model, "positive", init.shape[0], "cpu")
        neg, neg_mask = _context(negative, model, "negative", init.shape[0], "cpu")
        progress = host.Progress(steps)
        preview = host.previewer(model.preview)
        loras = [(lo, s) for lo, s, _ in model.loras]
        # adapters stay resident; the backbone moves or streams as planned
        with torch.inference_mode(False), loras_applied(backbone, loras, placement.device):
            out = sample_latent(
                backbone, ctx, mask, neg, neg_mask, tuple(init.shape), **schedule, seed=seed, sampler=sampler,
                init_latent=init if denoise < 1.0 or keep is not None else None, noise_mask=keep,
                callback=lambda d: progress.update(d["i"] + 1, preview(d["denoised"])), placement=placement,
                motion=motion, compression=(v.spatial_compression, v.temporal_compression),
            )
        return ({"samples": out.cpu(), "fps": fps},)  # fps: for VAE Decode's inline player and the next sampler


def _schedule(model: ModelPatch, shape: tuple[int, ...], steps: int, cfg: float, stg: float, shift: float,
              denoise: float, fps: float) -> dict:
    """sample_latent's keywords for the noise levels and guidance, as the model's family samples: AIPROD's loop
    builds its token-shift schedule from steps, shift and denoise; LTX-2 gives its own sigmas (the last `denoise`
    of them when continuing a latent), guidance and frame rate. A family that cannot take `stg` says so."""
    family, shift = model.family, shift or None
    stage = family.sampling(model, shape, steps, cfg, stg, shift, fps)
    if "guidance" not in stage:
        return {"steps": steps, "cfg": cfg, "shift": shift, "denoise": denoise}
    if denoise < 1.0:
        stage["sigmas"] = denoise_sigmas(lambda n: family.sampling(model, shape, n, cfg, stg, shift, fps)["sigmas"],
                                         steps, denoise)
    return stage
