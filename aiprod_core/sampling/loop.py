"""The guided sampling loop: from a prompt's embeddings to a latent, with CFG, kept positions (image-to-video,
inpainting), motion guidance and the backbone where a Placement puts it.

The pieces are pure functions elsewhere in this package (schedules, samplers, guidance, noise_mask,
noise_guidance, warp_guidance); the loop chooses which of them wrap the model's velocity for one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..flow.warp import latent_flow, warp_noise
from ..memory.engine import stage_guard
from ..memory.placement import Placement
from .guidance import guided_velocity
from .ltx2_loop import ltx2_start_latent
from .ltx2_schedule import LTX2Guidance, guide_denoised
from .motion import MotionGuidance
from .noise_guidance import sample_noise_guided, step_range
from .noise_mask import keep_latent, kept_velocity, latent_noise_mask
from .samplers import SAMPLERS, Callback, Velocity, noise_like, start_latent
from .schedules import denoise_sigmas, ltx_sigmas
from .warp_guidance import warp_guided_velocity


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
    noise_mask: torch.Tensor | None = None,
    callback: Callback | None = None,
    placement: Placement | None = None,
    stage: str = "sampling",
    motion: MotionGuidance | None = None,
    compression: tuple[int, int] = (8, 4),
    sigmas: torch.Tensor | None = None,
    guidance: LTX2Guidance | None = None,
    extra_args: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Sample a latent of `shape` [B,C,t,h,w]; with denoise < 1, continue from `init_latent`.

    noise_mask (1 = generate, 0 = keep; sampling.noise_mask.latent_noise_mask lists the shapes): the positions
    it keeps stay on `init_latent` (image-to-video: latent frame 0 kept; inpainting), at any denoise.

    placement: where the backbone runs for `stage` (memory.placement.Placement: resident or streamed blocks, fp8
    storage, attention chunks); None, or offload "none", runs where the backbone is. The latent comes back on the
    compute device.

    motion: how a flow steers the motion (MotionGuidance; None: no guidance). compression: the VAE's
    (spatial, temporal) one, which maps the flow's pixels onto the latent grid.

    sigmas: the noise levels to step through (e.g. LTX-2's), in place of the token-shift schedule of `steps`,
    `shift` and `denoise`; a run whose first sigma is below 1 continues from `init_latent`.
    guidance: LTX-2's guidance (CFG, STG, rescale on the clean-latent estimate) in place of `cfg`, with kept
    positions LTX-2's way: shown to the model clean at noise level 0 per voxel (so the model takes a sigma per
    voxel), started as its noiser starts them. Every step is then sampling.ltx2_loop.sample_ltx2's.
    extra_args: keywords every backbone call gets (e.g. {"fps": 24.0} for LTX-2's transformer).
    """
    continuing = denoise < 1.0 if sigmas is None else float(sigmas[0]) < 1.0
    noise_mask = _checked_mask(sampler, shape, continuing, init_latent, noise_mask)
    tokens = shape[2] * shape[3] * shape[4]

    def schedule(n: int) -> torch.Tensor:
        return ltx_sigmas(n, tokens, shift=shift)

    if sigmas is None:
        sigmas = schedule(steps) if denoise >= 1.0 else denoise_sigmas(schedule, steps, denoise)
    plan = _motion_plan(motion or MotionGuidance(), shape, seed, sigmas, compression)
    if guidance is None:
        x = start_latent(plan.noise, sigmas[0], init_latent.cpu() if continuing else None)
    else:  # LTX-2's noiser: kept voxels start clean
        clean = None if init_latent is None else init_latent.cpu()
        x = ltx2_start_latent(plan.noise, sigmas[0], clean, noise_mask)
    run = _runner(SAMPLERS[sampler], sigmas, plan, init_latent, None if guidance else noise_mask, callback)
    device = context.device if placement is None or placement.offload == "none" else placement.device

    def model(x, sigma, ctx, m, **kw):
        return backbone(x, sigma.to(x.device), ctx, m, **kw, **(extra_args or {}))

    def dev(t):
        return None if t is None else t.to(device)

    def velocity() -> Velocity:
        texts = dev(context), dev(mask), dev(neg_context), dev(neg_mask)
        if guidance is None:
            return guided_velocity(model, *texts, cfg)
        return ltx2_velocity(model, *texts, guidance, dev(init_latent), dev(noise_mask))

    if placement is None or placement.offload == "none":
        with stage_guard(stage):
            return run(velocity(), x.to(device))
    with placement.guard(stage), placement.backbone(backbone, stage):
        return run(velocity(), x.to(device))


def ltx2_velocity(model, context: torch.Tensor, mask: torch.Tensor | None, neg_context: torch.Tensor | None,
                  neg_mask: torch.Tensor | None, guidance: LTX2Guidance, clean: torch.Tensor | None = None,
                  keep: torch.Tensor | None = None) -> Velocity:
    """One step of sampling.ltx2_loop.sample_ltx2 as a velocity for the samplers: the passes the guidance needs as
    clean-latent estimates x0 = x - s v (s per voxel: kept voxels at 0), guided on x0, kept voxels put back, and
    v = (x - x0) / sigma. keep: [B|1,1,t,h,w] (1 generate, 0 keep `clean`); the state must start as
    ltx2_start_latent starts it. The Euler step on this velocity is sample_ltx2's, in the same float32 arithmetic."""

    def denoised(x, token_sigma, ctx, m, **kw):
        v = model(x, token_sigma, ctx, m, **kw)
        s = token_sigma.float().view(x.shape[0], 1, *(token_sigma.shape[1:] or [1] * (x.ndim - 2)))
        return (x.float() - v.float() * s).to(x.dtype)

    def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.float()
        token_sigma = s if keep is None else (keep.to(x) * s.view(-1, 1, 1, 1, 1)).expand(x.shape[0], -1, -1, -1, -1)[:, 0]
        cond = denoised(x, token_sigma, context, mask)
        uncond = denoised(x, token_sigma, neg_context, neg_mask) if guidance.needs_uncond else None
        perturbed = (denoised(x, token_sigma, context, mask, skip_self_attention=guidance.stg_blocks)
                     if guidance.needs_perturbed else None)
        x0 = guide_denoised(cond, uncond, perturbed, guidance)
        if keep is not None:
            x0 = (x0 * keep.to(x0) + clean.to(x0).float() * (1 - keep.to(x0))).to(x0.dtype)
        return ((x.float() - x0.float()) / float(s.flatten()[0])).to(x.dtype)  # one sigma per step

    return velocity


def _checked_mask(sampler: str, shape: tuple[int, ...], continuing: bool, init_latent: torch.Tensor | None,
                  noise_mask: torch.Tensor | None) -> torch.Tensor | None:
    """The run's settings checked before any work; the noise mask brought to the latent grid."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; choose one of {sorted(SAMPLERS)}")
    if continuing and init_latent is None:
        raise ValueError("denoise < 1 (or sigmas starting below 1) needs an initial latent to start from")
    if noise_mask is None:
        return None
    if init_latent is None:
        raise ValueError("a noise mask keeps part of a given latent; pass that latent as init_latent")
    if tuple(init_latent.shape) != tuple(shape):
        raise ValueError(f"initial latent has shape {tuple(init_latent.shape)}; expected {tuple(shape)}")
    return latent_noise_mask(noise_mask, shape)


@dataclass
class _MotionPlan:
    """What motion guidance does in one run, on its sigmas."""

    noise: torch.Tensor  # the initial noise: the warped noise when noise guidance starts at the first step
    guide: torch.Tensor | None = None  # the warped noise the guided steps pull toward
    guided: range = range(0)  # steps whose noise estimate is pulled onto `guide`
    pull: float = 1.0
    warp_flows: list[torch.Tensor | None] | None = None  # per batch item, the latent flow from frame 0 to each later one
    warp_weight: float = 0.0
    warp_sigma_min: float = float("inf")  # warp guidance applies at sigmas at or above this


def _motion_plan(motion: MotionGuidance, shape: tuple[int, ...], seed: int, sigmas: torch.Tensor,
                 compression: tuple[int, int]) -> _MotionPlan:
    """The seed's noise and, with a flow, the warped noise and the steps each kind of guidance applies to."""
    noise = noise_like(shape, seed)
    flow = motion.flow
    if flow is None:
        return _MotionPlan(noise)
    steps = len(sigmas) - 1
    guide = warp_noise(flow, noise, seed, motion.flow_strength, *compression)
    plan = _MotionPlan(guide if motion.flow_start == 0 else noise, guide,
                       step_range(steps, motion.flow_start, motion.flow_end), motion.flow_pull)
    if motion.warp_guidance > 0:

        def to_latent(f):
            return None if f is None else latent_flow(f, *shape[2:], *compression)

        plan.warp_flows = [to_latent(f) for f in flow] if isinstance(flow, (list, tuple)) else [to_latent(flow)] * shape[0]
        plan.warp_weight = motion.warp_guidance
        last = len(step_range(steps, 0.0, motion.warp_end))  # steps 0..last-1 are guided
        plan.warp_sigma_min = float(sigmas[last - 1]) if last else float("inf")
    return plan


def _runner(sample, sigmas: torch.Tensor, plan: _MotionPlan, init_latent: torch.Tensor | None,
            noise_mask: torch.Tensor | None, callback: Callback | None):
    """run(velocity, x): the sampler over `sigmas`, its velocity wrapped by the guidance this run asks for."""

    def run(velocity: Velocity, x: torch.Tensor) -> torch.Tensor:
        if noise_mask is not None:  # inside warp guidance, which then carries the kept first frame exactly
            velocity = kept_velocity(velocity, init_latent, plan.noise, noise_mask)
            return keep_latent(run_guided(velocity, x), init_latent, noise_mask)
        return run_guided(velocity, x)

    def run_guided(velocity: Velocity, x: torch.Tensor) -> torch.Tensor:
        if plan.warp_flows is not None:
            velocity = warp_guided_velocity(velocity, plan.warp_flows, plan.warp_weight, plan.warp_sigma_min)
        if plan.guide is not None and any(i > 0 for i in plan.guided):
            return sample_noise_guided(sample, velocity, x, sigmas, plan.guide, plan.guided, plan.pull, callback)
        return sample(velocity, x, sigmas, callback)

    return run
