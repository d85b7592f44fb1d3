"""Warp guidance: make the sampler's clean-latent estimate move along the guidance flow.

Warped noise (flow.warp.warp_noise) only seeds the motion; a model that has not learned to follow it (a
camera move under a caption that calls the objects still) draws its own. Here, at the guided steps, the
model's estimate of the clean latent `x0_hat = x - s v` is rebuilt: each later latent frame k is pulled toward
the first frame moved along the flow from the first frame to frame k (one resampling, so no blur builds up
from frame to frame),

    x0_k <- x0_k + weight * inside * (warp(x0_0, F_0k) - x0_k),

with `inside` the pixels whose source is in the frame (revealed content stays the model's). The noise
estimate `eps_hat = x + (1 - s) v` is kept, and the velocity handed to the sampler is `eps_hat - x0`: the
same step as before, toward the warped estimate. The model then refines the warped layout in the steps
that follow. The idea is that of training-free latent warping in video editing (Rerender-A-Video, Yang et
al. 2023; FlowVid, Liang et al. 2024), applied to the denoiser's estimate during generation.
"""

from __future__ import annotations

import torch

from ..flow.warp import resample, warp_sources
from .samplers import Velocity

Sources = list  # per batch item: None, or one warp_sources(F_0k) per later frame k


def _sources(flows: list[torch.Tensor | None]) -> Sources:
    """warp_sources of every frame of every item's latent flow [t-1,h,w,2], once per distinct flow tensor."""
    done: dict[int, list] = {}
    for f in flows:
        if f is not None and id(f) not in done:
            done[id(f)] = [warp_sources(step) for step in f]
    return [None if f is None else done[id(f)] for f in flows]


def _warp_x0(x0: torch.Tensor, sources: Sources, weight: float) -> torch.Tensor:
    out = x0.clone()
    for b, item in enumerate(sources):
        for k, src in enumerate(item or (), start=1):
            moved = resample(x0[b : b + 1, :, 0], src)[0]
            out[b, :, k] = out[b, :, k] + weight * src[1].to(x0) * (moved - out[b, :, k])
    return out


def warp_x0(x0: torch.Tensor, flows: list[torch.Tensor | None], weight: float) -> torch.Tensor:
    """x0 [B,C,t,h,w] with frames 1.. pulled onto the first frame moved along flows (per batch item, the
    latent flow [t-1,h,w,2] from the first frame to each later one; None = untouched)."""
    return _warp_x0(x0, _sources(flows), weight)


def warp_guided_velocity(velocity: Velocity, flows: list[torch.Tensor | None], weight: float, sigma_min: float) -> Velocity:
    """Wrap a velocity function: at sigma >= sigma_min, the step goes toward the warped clean estimate. The
    flows' source points are found once here, not at every step."""
    sources = _sources(flows)

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        v = velocity(x, sigma)
        if weight <= 0 or float(sigma.max()) < sigma_min:
            return v
        s = sigma.to(v).view(-1, *([1] * (v.ndim - 1)))
        return x + (1 - s) * v - _warp_x0(x - s * v, sources, weight)

    return guided
