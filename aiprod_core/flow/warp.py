"""Noise warping along a flow (Go-with-the-Flow, Burgert et al. 2025, arXiv 2501.08331), at latent resolution.

The paper transports noise frame to frame so each frame stays i.i.d. standard Gaussian while the noise
moves with the picture. This module implements a simpler exact variant, "pull with noise splitting":

1. Noise lives on a fine grid, `fine` times the latent size per side (sub-latent-pixel motion then moves
   it), and is summed over fine x fine blocks / fine to give the latent noise (a sum of fine^2 i.i.d.
   N(0,1) values over fine is N(0,1), and disjoint blocks stay independent).
2. The pixel flow is resized to the fine grid (vectors scaled) and composed over the VAE's temporal stride,
   so one transport step goes from the pixel frame of latent frame k-1 to that of latent frame k (latent
   frame k <-> pixel frame k * temporal, the last frame of its causal group).
3. Each fine pixel x of the new frame pulls the value of its source s(x) = round(x + b(x)), with b the
   backward flow (the forward flow inverted by fixed-point iteration). A source pulled by k targets gives
   each `q / sqrt(k) + z_i - mean(z)` with fresh z_i ~ N(0,1): the Brownian-bridge split of the paper,
   which makes the k values i.i.d. N(0,1) whose sum is sqrt(k) q. Sources pulled by no one (contraction)
   are dropped; targets whose source is outside the frame (revealed content) get fresh noise.
   Every target has exactly one source and distinct sources are independent, so each frame is exactly
   i.i.d. N(0,1) whatever the flow (tested statistically in tests/test_flow.py).

Strength blends fresh noise back in, variance-preserving: `s * warped + sqrt(1 - s^2) * fresh`, so each
value stays N(0,1) and its correlation with the warped noise is s. (The paper's "degradation" d mixes
`(d fresh + (1-d) warped) / sqrt(d^2 + (1-d)^2)`; both keep unit variance, this one is linear in s for the
correlation.) With s = 0 the result is exactly the fresh noise given, which the sampler draws for its seed
(sampling.noise_like): the unguided noise of that seed.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from .ops import fit_flow, resize_flow

log = logging.getLogger(__name__)


def _grid(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys], dim=-1)  # [H,W,2] (x, y)


def _bilinear(images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of images [B,C,H,W] at points [H,W,2] (x, y pixels), clamped at the border."""
    h, w = images.shape[-2:]
    norm = torch.stack([points[..., 0] * 2 / max(w - 1, 1) - 1, points[..., 1] * 2 / max(h - 1, 1) - 1], dim=-1)
    grid = norm.to(images)[None].expand(images.shape[0], -1, -1, -1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def sample_field(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear value of field [H,W,2] at points [H,W,2] (x, y pixels), clamped at the border."""
    return _bilinear(field.permute(2, 0, 1)[None], points)[0].permute(1, 2, 0)


def compose_flows(flows: torch.Tensor) -> torch.Tensor:
    """Flows [N,H,W,2] of consecutive frame pairs -> the flow [H,W,2] from the first frame to the last."""
    grid = _grid(*flows.shape[1:3])
    total = flows[0].clone()
    for f in flows[1:]:
        total = total + sample_field(f, grid + total)
    return total


def backward_flow(forward: torch.Tensor, iterations: int = 12) -> torch.Tensor:
    """b with b(x) + f(x + b(x)) = 0: the forward flow [H,W,2] inverted by damped fixed-point iteration.

    The plain iteration b <- -f(x + b) oscillates where the picture expands by 2x or more (a strong zoom-in);
    a step of one half converges for expansions up to 3x per step and contractions, and is exact Newton for a
    2x zoom."""
    grid = _grid(*forward.shape[:2])
    b = -forward
    for _ in range(iterations):
        b = b - 0.5 * (b + sample_field(forward, grid + b))
    return b


def transport(q: torch.Tensor, forward: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One step of noise transport: q [B,C,H,W] i.i.d. N(0,1) moved along forward [H,W,2] -> [B,C,H,W] i.i.d. N(0,1)."""
    b_, c, h, w = q.shape
    src = (_grid(h, w) + backward_flow(forward)).round()
    sx, sy = src[..., 0].long().flatten(), src[..., 1].long().flatten()
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    j = (sy.clamp(0, h - 1) * w + sx.clamp(0, w - 1))  # [P] source index of every target
    k = torch.bincount(j[inside], minlength=h * w).float()  # targets per source
    z = torch.randn(b_, c, h * w, generator=generator)
    zsum = torch.zeros(b_, c, h * w).index_add_(2, j[inside], z[..., inside])
    zbar = zsum / k.clamp_min(1)
    qf = q.reshape(b_, c, h * w)
    pulled = qf[..., j] / k[j].clamp_min(1).sqrt() + z - zbar[..., j]
    return torch.where(inside, pulled, z).reshape(b_, c, h, w)


def warp_noise(
    flow: torch.Tensor | list[torch.Tensor | None] | None,
    noise: torch.Tensor,
    seed: int = 0,
    strength: float = 1.0,
    spatial: int = 8,
    temporal: int = 4,
    fine: int | None = None,
) -> torch.Tensor:
    """`noise` [B,C,t,h,w] (the fresh noise of a latent, as the sampler draws it for `seed`) with the noise
    warped along a pixel FLOW [N,H,W,2] of the clip blended in.

    spatial, temporal: the VAE's compression (pixels per latent pixel, frames per latent frame). The clip has
    1 + (t-1) temporal frames of (h spatial) x (w spatial) pixels; a flow of another size is resized and a
    shorter one continued with its last pair (both with a note in the log; see ops.fit_flow). fine: noise
    grid per latent pixel per side (default min(spatial, 8)). strength: 0..1, see the module docstring.
    A one-frame latent (t = 1) has no motion: the flow is not used. A list of B flows (None for plain noise)
    guides each batch item with its own flow. The warped noise is drawn from `seed`; with no flow or strength
    0 the result is `noise` itself.
    """
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"warp_noise takes the fresh noise [B,C,t,h,w], found {type(noise).__name__} {noise!r}; "
                        "pass sampling.noise_like(shape, seed) instead of the shape")
    if noise.ndim != 5:
        raise ValueError(f"latent shape {tuple(noise.shape)}; expected [B,C,t,h,w]")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"flow strength={strength} must be in 0..1 (0 = plain noise, 1 = fully warped)")
    if flow is None or strength == 0.0:
        return noise
    b, c, t, h, w = noise.shape
    if isinstance(flow, (list, tuple)):
        if len(flow) != b:
            raise ValueError(f"{len(flow)} flows for a batch of {b}; give one flow (or None) per batch item")
        out = noise.clone()
        for i, f in enumerate(flow):
            if f is not None:
                warped = _warped(f, (1, c, t, h, w), seed * 1000003 + i, spatial, temporal, fine)
                out[i] = strength * warped[0] + (1 - strength**2) ** 0.5 * noise[i]
        return out
    warped = _warped(flow, (b, c, t, h, w), seed, spatial, temporal, fine)
    return strength * warped + (1 - strength**2) ** 0.5 * noise


def _warped(flow: torch.Tensor, shape: tuple[int, ...], seed: int, spatial: int, temporal: int,
            fine: int | None) -> torch.Tensor:
    """The noise [B,C,t,h,w] transported along one flow (module doc, steps 1-3), from its own generator."""
    b, c, t, h, w = shape
    r = fine or min(spatial, 8)
    hf, wf = h * r, w * r
    g = torch.Generator().manual_seed((int(seed) * 2654435761 + 0x5EED) % 2**63)
    q = torch.randn(b, c, hf, wf, generator=g)
    frames = [q]
    if t > 1:
        pixel = fit_flow(flow, 1 + (t - 1) * temporal, h * spatial, w * spatial, "motion flow")
        pixel = resize_flow(pixel, hf, wf)
        for k in range(1, t):
            step = compose_flows(pixel[(k - 1) * temporal : k * temporal])
            q = transport(q, step, g)
            frames.append(q)
    return torch.stack([F.avg_pool2d(f, r) * r for f in frames], dim=2)  # block sums / r: N(0,1)


def latent_flow(flow: torch.Tensor, t: int, h: int, w: int, spatial: int = 8, temporal: int = 4) -> torch.Tensor:
    """Where each pixel of the first latent frame goes in latent frames 1..t-1: [t-1,h,w,2], in latent pixels,
    from a pixel FLOW [N,H,W,2] of the clip (fitted to it as in warp_noise). Latent frame k is pixel frame
    k * temporal; the flows are composed at pixel resolution, then resized to the latent grid."""
    pixel = fit_flow(flow, 1 + (t - 1) * temporal, h * spatial, w * spatial, "motion flow")
    steps = [compose_flows(pixel[: k * temporal]) for k in range(1, t)]
    return resize_flow(torch.stack(steps), h, w) if steps else torch.zeros(0, h, w, 2)


def warp_sources(forward: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a move along forward [h,w,2] (where each pixel goes): the source point [h,w,2] of every pixel of the
    moved frame, and a mask [h,w] of the pixels whose source lies inside the frame (the others are revealed
    content, with no source). Depends on the flow only, so a sampler computes it once per run."""
    h, w = forward.shape[:2]
    src = _grid(h, w) + backward_flow(forward.float())
    inside = (src[..., 0] > -0.5) & (src[..., 0] < w - 0.5) & (src[..., 1] > -0.5) & (src[..., 1] < h - 0.5)
    return src, inside


def resample(frame: torch.Tensor, sources: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """frame [B,C,h,w] moved as warp_sources says (bilinear, clamped at the border)."""
    return _bilinear(frame, sources[0])


def warp_frame(frame: torch.Tensor, forward: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move frame [B,C,h,w] along forward [h,w,2]: the warped frame and the inside mask (see warp_sources)."""
    sources = warp_sources(forward)
    return resample(frame, sources), sources[1]
