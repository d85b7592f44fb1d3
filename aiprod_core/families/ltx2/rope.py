"""LTX-2's video positions and rotary embedding, as pure functions of the latent grid.

Positions are in pixels and seconds, not latent indices: latent frame f covers pixel frames [8f - 7, 8f + 1)
(the causal VAE encodes frame 0 alone, so frame 0 covers [0, 1)), divided by the frame rate; latent row i covers
pixel rows [32i, 32i + 32). Each token takes the middle of its interval. An angle is
`f_k * (2 * p / max_pos - 1)` with `f_k = theta ** (k / (K - 1)) * pi / 2`, K = width // 6 frequencies per axis.

Unlike AIPROD's own backbone, one table spans the whole width, so each head sees a different slice of the
frequencies; padding (angle 0) fills the front when the width is not a multiple of 6. "split" pairs channel i
with channel i + head_dim / 2 within each head; "interleaved" pairs channels 2i and 2i + 1 across the width.
The arithmetic is float32, in the reference's order, because the released weights were trained with it: at
angles up to theta * pi / 2 a float32 ulp is about 1e-3 rad, so a float64 table would be a different model.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

Rope = tuple[Tensor, Tensor]

VAE_SCALE_FACTORS = (8, 32, 32)  # (time, height, width) pixels per latent step of LTX-2's video VAE


def video_positions(
    frames: int,
    height: int,
    width: int,
    fps: float,
    scale_factors: tuple[int, int, int] = VAE_SCALE_FACTORS,
    device: torch.device | str | None = None,
) -> Tensor:
    """Token positions of a latent grid (frames, height, width) -> [N, 3, 2] float32 [start, end) bounds in
    (seconds, pixels, pixels), tokens in (t, h, w) order, N = frames * height * width."""
    if min(frames, height, width) < 1:
        raise ValueError(f"latent grid ({frames}, {height}, {width}) must be at least 1 in every axis")
    if fps <= 0:
        raise ValueError(f"fps={fps} must be positive (the clip's frame rate, e.g. 24)")
    st, sh, sw = scale_factors
    f, h, w = torch.meshgrid(
        torch.arange(frames, device=device), torch.arange(height, device=device),
        torch.arange(width, device=device), indexing="ij",
    )
    starts = torch.stack([f * st, h * sh, w * sw], dim=-1).reshape(-1, 3)  # (N, 3) pixel coordinates
    ends = starts + torch.tensor([st, sh, sw], device=device)
    bounds = torch.stack([starts, ends], dim=-1).float()  # (N, 3, 2)
    # causal VAE: frame 0 is encoded alone, so every later latent frame starts st - 1 pixel frames earlier
    bounds[:, 0] = (bounds[:, 0] + 1 - st).clamp(min=0) / fps
    return bounds


def _frequencies(theta: float, count: int, double_precision: bool) -> Tensor:
    """[count] float32 frequencies theta ** linspace(0, 1) * pi / 2."""
    if double_precision:
        grid = np.power(theta, np.linspace(0.0, 1.0, count, dtype=np.float64))
        return torch.tensor(grid * math.pi / 2, dtype=torch.float32)
    return theta ** torch.linspace(0.0, 1.0, count, dtype=torch.float32) * math.pi / 2


def rope_tables(
    bounds: Tensor,
    width: int,
    heads: int,
    max_pos: tuple[int, int, int],
    theta: float,
    rope_type: str,
    double_precision: bool,
    dtype: torch.dtype,
) -> Rope:
    """(cos, sin) for position bounds [..., N, 3, 2]: split -> each [..., H, N, head_dim / 2]; interleaved ->
    each [..., N, width]. Computed in float32 and cast to `dtype`."""
    middle = (bounds[..., 0] + bounds[..., 1]) / 2.0  # (..., N, 3)
    frac = middle / torch.tensor(max_pos, dtype=middle.dtype, device=middle.device)
    freqs = _frequencies(theta, width // 6, double_precision).to(bounds.device)  # (K,)
    # (..., N, 3, K) -> (..., N, K, 3) -> (..., N, 3K): frequency-major, axis-minor
    angles = (freqs * (frac.unsqueeze(-1) * 2 - 1)).transpose(-1, -2).flatten(-2)
    cos, sin = angles.cos(), angles.sin()
    if rope_type == "split":
        pad = width // 2 - angles.shape[-1]
        cos = torch.cat([torch.ones_like(cos[..., :pad]), cos], dim=-1)
        sin = torch.cat([torch.zeros_like(sin[..., :pad]), sin], dim=-1)
        # (..., N, width/2) -> (..., H, N, head_dim/2): consecutive slices of the table go to consecutive heads
        cos = cos.unflatten(-1, (heads, -1)).transpose(-2, -3)
        sin = sin.unflatten(-1, (heads, -1)).transpose(-2, -3)
    elif rope_type == "interleaved":
        pad = width % 6
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
        cos = torch.cat([torch.ones_like(cos[..., :pad]), cos], dim=-1)
        sin = torch.cat([torch.zeros_like(sin[..., :pad]), sin], dim=-1)
    else:
        raise ValueError(f"rope_type {rope_type!r} is not 'split' or 'interleaved'")
    return cos.to(dtype), sin.to(dtype)


def apply_rope(x: Tensor, rope: Rope, rope_type: str) -> Tensor:
    """Rotate x [B, N, width] by tables from `rope_tables` -> [B, N, width]."""
    cos, sin = rope
    if rope_type == "split":
        b, n, _ = x.shape
        heads = cos.shape[-3]
        xh = x.view(b, n, heads, 2, -1).transpose(1, 2)  # (B, H, N, 2, D/2): the two halves of each head
        x1, x2 = xh[..., 0, :], xh[..., 1, :]
        c, s = cos.unsqueeze(-4) if cos.ndim == 3 else cos, sin.unsqueeze(-4) if sin.ndim == 3 else sin
        out = torch.stack([x1 * c - x2 * s, x2 * c + x1 * s], dim=-2)  # (B, H, N, 2, D/2)
        return out.transpose(1, 2).reshape(b, n, -1)
    pairs = x.unflatten(-1, (-1, 2))  # (B, N, width/2, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos + rotated * sin
