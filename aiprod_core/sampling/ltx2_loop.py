"""LTX-2's sampling loop as a pure function: Euler steps on the denoised prediction, with CFG, STG and rescale,
and kept (conditioning) voxels.

Each step does what Lightricks' `euler_denoising_loop` (ltx-pipelines) does for the video stream:
1. x0 = x - s v from each pass the guidance needs (conditional; unconditional on the negative prompt; STG's, with
   the self-attention of a few blocks skipped), where s is the step's sigma times the noise mask per voxel, so
   a kept voxel is shown to the model clean (sigma 0) and predicted as itself;
2. the passes combined on x0 (`ltx2_schedule.guide_denoised`);
3. kept voxels put back: x0 = m x0 + (1 - m) clean;
4. an Euler step with the step's sigma, v = (x - x0) / s (`ltx2_schedule.euler_step`).
A kept voxel starts clean and its velocity is 0 at every step, so it ends exactly as given (image-to-video keeps
latent frame 0). The loop works on x0 rather than on the velocity because the rescale is not affine in either.

Shapes: x, noise, clean [B,C,t,h,w]; noise mask [B|1,1,t,h,w] in 0..1 (1 generate, 0 keep); context [B,L,D].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .ltx2_schedule import NO_GUIDANCE, LTX2Guidance, euler_step, guide_denoised
from .noise_mask import latent_noise_mask
from .samplers import Callback

# model(x, sigma, context, context_mask, **extra_args) -> velocity [B,C,t,h,w], as
# `families.ltx2.transformer.LTX2VideoTransformer`; sigma is [B], or [B,t,h,w] per voxel when voxels are kept.
# STG's pass adds `skip_self_attention=blocks` (blocks whose self-attention returns its values); only that pass
# does, so a model without the option runs every guidance but STG.
LTX2Velocity = Callable[..., Tensor]


def ltx2_start_latent(noise: Tensor, sigma0: float | Tensor, clean: Tensor | None = None,
                      noise_mask: Tensor | None = None) -> Tensor:
    """The latent at sigma0: `noise * m s0 + clean * (1 - m s0)`, Lightricks' GaussianNoiser. Pure noise from
    sigma0 = 1 with no clean latent; the stage-2 refinement starts from the upsampled latent at its first sigma."""
    if clean is None:
        clean = torch.zeros_like(noise)
    if clean.shape != noise.shape:
        raise ValueError(f"clean latent has shape {tuple(clean.shape)}; expected the noise's {tuple(noise.shape)}")
    scaled = sigma0 if noise_mask is None else noise_mask * sigma0
    return (noise * scaled + clean * (1 - scaled)).to(noise.dtype)


def _denoiser(model: LTX2Velocity, extra_args: dict[str, Any]) -> Callable[..., Tensor]:
    """x0 = x - s v in float32, returned in x's dtype, as the reference's X0Model."""

    def denoise(x: Tensor, token_sigma: Tensor, context: Tensor, mask: Tensor | None, **kw: Any) -> Tensor:
        v = model(x, token_sigma, context, mask, **kw, **extra_args)
        # [B] -> [B,1,1,1,1]; [B,t,h,w] -> [B,1,t,h,w]
        s = token_sigma.float().view(x.shape[0], 1, *(token_sigma.shape[1:] or [1] * (x.ndim - 2)))
        return (x.float() - v.float() * s).to(x.dtype)

    return denoise


@torch.no_grad()
def sample_ltx2(
    model: LTX2Velocity,
    noise: Tensor,
    sigmas: Tensor,
    context: Tensor,
    context_mask: Tensor | None = None,
    neg_context: Tensor | None = None,
    neg_mask: Tensor | None = None,
    guidance: LTX2Guidance = NO_GUIDANCE,
    *,
    clean: Tensor | None = None,
    noise_mask: Tensor | None = None,
    extra_args: dict[str, Any] | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Sample a video latent along `sigmas` (from `ltx2_sigmas` or `distilled_sigmas`) from `noise`.

    noise [B,C,t,h,w]; context [B,L,D] and context_mask [B,L] (None: all valid; LTX-2's connector output needs
    none); neg_context/neg_mask: the negative prompt, needed when guidance.cfg != 1. clean: the latent to start
    from and to keep (None: zeros): where noise_mask (any shape `noise_mask.latent_noise_mask` takes) is 0 it is
    kept, where 1 generated; the start is `ltx2_start_latent(noise, sigmas[0], clean, noise_mask)`. extra_args go
    to every model call (e.g. {"fps": 24.0}). Returns the latent at sigmas[-1], in noise's dtype.
    """
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(f"sigmas has shape {tuple(sigmas.shape)}; expected [steps + 1] noise levels, e.g. ltx2_sigmas(steps)")
    if guidance.needs_uncond and neg_context is None:
        raise ValueError(f"cfg={guidance.cfg} needs the negative prompt's context; pass neg_context or set cfg=1")
    mask = None if noise_mask is None else latent_noise_mask(noise_mask, tuple(noise.shape)).to(noise.device)
    clean = torch.zeros_like(noise) if clean is None else clean.to(noise)
    denoise = _denoiser(model, extra_args or {})
    b = noise.shape[0]
    x = ltx2_start_latent(noise, sigmas[0].to(noise.device), clean, mask)
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma = sigmas[i].to(noise.device, torch.float32)
        # per voxel: kept voxels are at sigma 0; [B,t,h,w], or [B] when nothing is kept
        token_sigma = sigma.expand(b) if mask is None else (mask * sigma).expand(b, -1, -1, -1, -1)[:, 0]
        cond = denoise(x, token_sigma, context, context_mask)
        uncond = denoise(x, token_sigma, neg_context, neg_mask) if guidance.needs_uncond else None
        perturbed = (denoise(x, token_sigma, context, context_mask, skip_self_attention=guidance.stg_blocks)
                     if guidance.needs_perturbed else None)
        x0 = guide_denoised(cond, uncond, perturbed, guidance)
        if mask is not None:
            x0 = (x0 * mask + clean.float() * (1 - mask)).to(x0.dtype)
        if callback is not None:
            callback({"i": i, "steps": steps, "x": x, "sigma": sigma, "denoised": x0})
        x = euler_step(x, x0, sigmas[i], sigmas[i + 1])
    return x
