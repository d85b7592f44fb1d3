"""Keeping part of a latent while the rest is generated: image-to-video and inpainting.

A noise mask says, per latent position, how much the sampler may change: 1 generates, 0 keeps the given
latent (ComfyUI's `noise_mask`). At every step the model sees a kept position clean, as the given latent
itself, so the generated part is drawn to match it from the first, noisiest steps on (LTX-Video gives its
conditioning tokens timestep 0; this backbone has one timestep per clip, so only their content is clean). The
sampler's own state for a kept position moves along that latent's rectified-flow path `(1 - s) latent + s noise`
(its velocity is the path's), so the result ends on the given latent. Image-to-video keeps latent frame 0,
which a causal VAE encodes from the first frame alone.

Measured on the shipped model (`aiprod eval i2v`, 16 world clips and 16 camera clips, seed 0): shown on its
noisy path instead, the kept frame left the direction of the world clips at 0.75 (clean: 1.00) and both objects of
the camera clips on screen in 38% (clean: 62%).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .samplers import Velocity


def latent_noise_mask(mask: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A mask in 0..1 brought to [B|1,1,t,h,w] for a latent of `shape` [B,C,t,h,w].

    Accepted: a latent-grid mask [B|1,1|C,t,h,w] (AIPROD Image To Video), or a picture mask [h',w'], [B|1,h',w']
    or [B|1,1,h',w'] (ComfyUI's Set Latent Noise Mask), resized to the latent grid and shared by every frame.
    """
    b, _, t, h, w = shape
    m = mask.float()
    if m.ndim in (2, 3, 4):
        m = m.reshape(-1, 1, *m.shape[-2:])
        if m.shape[-2:] != (h, w):
            m = F.interpolate(m, size=(h, w), mode="area")
        m = m[:, :, None].expand(-1, -1, t, -1, -1)
    if m.ndim != 5 or m.shape[0] not in (1, b) or m.shape[2:] != (t, h, w):
        raise ValueError(f"noise mask has shape {tuple(mask.shape)}; expected [B,1,{t},{h},{w}] on the latent grid or "
                         f"a picture mask [B,H,W] for a latent of shape {tuple(shape)}; use the mask made with this latent")
    if m.shape[1] != 1:
        m = m.amax(1, keepdim=True)  # a position is generated when any of its channels is
    if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise ValueError("noise mask values must lie in 0..1 (1 = generate, 0 = keep the given latent)")
    return m.contiguous()


def kept_velocity(velocity: Velocity, latent: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor) -> Velocity:
    """Wrap a velocity function so that where `mask` is 0 the model sees `latent` and the clip follows its path
    (module doc); a mask between 0 and 1 blends the two."""
    cache: dict = {}

    def kept(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if "m" not in cache:  # moved to the sampler's device and dtype once
            cache.update(m=mask.to(x), z=latent.to(x), n=noise.to(x))
        m, z, n = cache["m"], cache["z"], cache["n"]
        return torch.lerp(n - z, velocity(torch.lerp(z, x, m), sigma), m)

    return kept


def keep_latent(latent: torch.Tensor, given: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A sampled latent with its kept positions set to the given latent exactly (noise guidance between the steps
    may have nudged them off its path)."""
    return torch.lerp(given.to(latent), latent, mask.to(latent))
