"""3D rotary position embedding over (t, h, w) with LTX-Video's fractional positions.

As in LTX-Video (`LTXVideoRotaryPosEmbed`), a position p on an axis becomes the fraction p / max_pos and
the angle of frequency f is f * (2 p / max_pos - 1), with f spaced geometrically from pi/2 to
theta * pi/2. Unlike LTX, which spreads one table over the whole width (so each head sees only a
slice of the frequencies), head_dim is split into three even parts, one per axis, and every head gets
the full set. Pairs are laid out rotate-half style, (x[i], x[i + head_dim/2]), which needs no strided
gather. Positions are latent-grid indices: LTX first scales them to pixels (x32) and seconds, which
`rope_max_pos` would then have to absorb.
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


def rope_tables(
    positions: Tensor,
    head_dim: int,
    max_pos: tuple[float, float, float],
    theta: float,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Rotation tables (cos, sin_rot) for positions [N, 3], each [N, head_dim] in `dtype`.

    sin_rot carries the sign of the 90-degree turn: [-sin, sin] over the two halves, so that
    `apply_rope` needs no negation per call. Angles reach theta * pi/2 (~1.6e4 rad), where float32
    resolves only ~1e-3 rad, so the angles are computed in float64 and only the tables are cast.
    """
    ang = rope_angles(positions.cpu(), head_dim, max_pos, theta, dtype=torch.float64)
    cos, sin = ang.cos(), ang.sin()
    cos = torch.cat([cos, cos], dim=-1)  # both halves of a pair share one angle
    sin_rot = torch.cat([-sin, sin], dim=-1)
    return cos.to(dtype), sin_rot.to(dtype)


def rope_cos_sin(
    t: int,
    h: int,
    w: int,
    head_dim: int,
    max_pos: tuple[float, float, float],
    theta: float,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """`rope_tables` for every token of a t x h x w latent grid: two [t*h*w, head_dim] float32 on `device`.

    Built on the CPU (float64 works on every backend, MPS included), then moved once.
    """
    cos, sin_rot = rope_tables(video_positions(t, h, w), head_dim, max_pos, theta)
    return cos.to(device), sin_rot.to(device)


def apply_rope(x: Tensor, cos: Tensor, sin_rot: Tensor) -> Tensor:
    """Rotate x [..., N, head_dim] by the `rope_tables` [N, head_dim]; computed in float32 at least.

    Pair i is (x[i], x[i + head_dim/2]): out = x * cos + swap_halves(x) * sin_rot.
    """
    xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 rotate in float32, as in LTX
    x1, x2 = xf.chunk(2, dim=-1)
    return torch.addcmul(xf * cos, torch.cat([x2, x1], dim=-1), sin_rot).to(x.dtype)
