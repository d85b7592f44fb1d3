"""3D rotary position embedding over (t, h, w) with LTX-Video's fractional positions.

As in LTX-Video (`LTXVideoRotaryPosEmbed`), a position p on an axis becomes the fraction p / max_pos and
the angle of frequency f is f * (2 p / max_pos - 1), with f spaced geometrically from pi/2 to
theta * pi/2. Unlike LTX, which rotates the whole width at once, every head gets the same rotation:
head_dim is split into three even parts, one per axis, so a LoRA or a head count change does not move
frequencies between heads. Pairs are laid out rotate-half style, (x[i], x[i + head_dim/2]), which
needs no strided gather.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rope_axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """Rotation pairs given to (t, h, w); they sum to head_dim // 2 and space gets any remainder."""
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"head_dim={head_dim} must be even and >= 6 to split into three rotary parts")
    pairs = head_dim // 2
    n_t = pairs // 3
    n_h = (pairs - n_t) // 2
    return n_t, n_h, pairs - n_t - n_h


def rope_angles(
    positions: Tensor,
    head_dim: int,
    max_pos: tuple[float, float, float],
    theta: float,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Rotation angles for positions [N, 3] in (t, h, w) order -> [N, head_dim // 2] in `dtype`."""
    if positions.ndim != 2 or positions.shape[-1] != 3:
        raise ValueError(f"positions has shape {tuple(positions.shape)}; expected [N, 3] (t, h, w)")
    frac = positions.to(dtype) / torch.tensor(max_pos, dtype=dtype, device=positions.device)
    parts = []
    for axis, n in enumerate(rope_axis_pairs(head_dim)):
        # theta ** linspace(log_theta 1, log_theta theta, n) * pi/2, as in LTX-Video
        freqs = theta ** torch.linspace(0.0, 1.0, n, dtype=dtype, device=positions.device)
        freqs = freqs * (math.pi / 2)
        parts.append((2 * frac[:, axis : axis + 1] - 1) * freqs)  # (N, n)
    return torch.cat(parts, dim=-1)  # (N, head_dim/2)


def video_positions(t: int, h: int, w: int, device: torch.device | str | None = None) -> Tensor:
    """Integer (t, h, w) latent coordinates of every token, flattened in (t, h, w) order -> [t*h*w, 3]."""
    grid = torch.meshgrid(
        torch.arange(t, device=device),
        torch.arange(h, device=device),
        torch.arange(w, device=device),
        indexing="ij",
    )
    return torch.stack(grid, dim=-1).reshape(-1, 3)


def rope_cos_sin(
    t: int,
    h: int,
    w: int,
    head_dim: int,
    max_pos: tuple[float, float, float],
    theta: float,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """cos and sin tables for a t x h x w latent grid, each [t*h*w, head_dim] float32 on `device`.

    Angles reach theta * pi/2 (~1.6e4 rad), where float32 keeps only ~1e-3 rad, so the table is built
    in float64 on the CPU (any backend, MPS included) and only the result is cast and moved.
    """
    ang = rope_angles(video_positions(t, h, w), head_dim, max_pos, theta, dtype=torch.float64)
    ang = torch.cat([ang, ang], dim=-1)  # both halves of a pair share one angle
    return ang.cos().float().to(device), ang.sin().float().to(device)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [..., N, head_dim] by the tables cos, sin [N, head_dim]; computed in float32 at least."""
    xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 rotate in float32, as in LTX
    x1, x2 = xf.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)  # the pair partner, with the sign of a 90-degree turn
    return (xf * cos + rotated * sin).to(x.dtype)
