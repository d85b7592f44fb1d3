"""Where the LTX-2 decoder's tiles go and how they are blended: the split of `ltx_core`'s `tiled_decode`.

The released decoder is not causal in time, so a clip cannot be decoded chunk by chunk with a carried state.
Instead overlapping latent tiles are decoded on their own and blended with linear ramps over the overlaps:
in space the ramps weigh both neighbours; in time a later tile also starts one latent frame early, and its
ramp starts at weight 0, because the first frame a tile decodes is an "image" frame that does not match the
clip's frame there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in latent units: [start, end), ramp lengths on each side."""

    start: int
    end: int
    left: int = 0
    right: int = 0


def split_symmetric(length: int, size: int, overlap: int) -> list[Span]:
    """Tiles of `size` with `overlap` between neighbours; the last tile stretches or shrinks to the end."""
    if length <= size:
        return [Span(0, length)]
    step = size - overlap
    n = (length + size - 2 * overlap - 1) // step
    spans = []
    for i in range(n):
        start = i * step
        end = length if i == n - 1 else start + size
        spans.append(Span(start, end, overlap if i > 0 else 0, overlap if i < n - 1 else 0))
    return spans


def split_time(length: int, size: int, overlap: int) -> list[Span]:
    """As `split_symmetric`, but each later tile starts one latent frame early with a ramp one longer."""
    spans = split_symmetric(length, size, overlap)
    if len(spans) == 1:
        return spans
    return [spans[0]] + [Span(s.start - 1, s.end, s.left + 1, s.right) for s in spans[1:]]


def trapezoid(length: int, left: int, right: int, left_from_zero: bool = False) -> Tensor:
    """A 1-D blend weight: 1 inside, linear ramps of `left` and `right` samples that never reach 0
    (`left_from_zero`: the left ramp starts at exactly 0)."""
    left, right = max(0, min(left, length)), max(0, min(right, length))
    w = torch.ones(length)
    if left:
        ramp = torch.linspace(0.0, 1.0, left + 1 if left_from_zero else left + 2)[:-1]
        w[:left] *= ramp if left_from_zero else ramp[1:]
    if right:
        w[-right:] *= torch.linspace(1.0, 0.0, right + 2)[1:-1]
    return w.clamp_(0, 1)


def space_tile_size(tile: int, overlap: int, axis_len: int, long_side: int) -> int:
    """The tile size along one spatial axis: `tile` on the longer side, scaled down on the shorter one."""
    return max(max(2, overlap + 1), round(tile * axis_len / long_side))


def space_output(span: Span, scale: int) -> tuple[slice, Tensor]:
    """Pixel rows/columns a spatial tile writes and their weights."""
    start, stop = span.start * scale, span.end * scale
    return slice(start, stop), trapezoid(stop - start, span.left * scale, span.right * scale)


def time_output(span: Span, scale: int) -> tuple[slice, Tensor]:
    """Frames a temporal tile writes (latent frame i -> frame i*scale; the tile's first frame is alone) and
    their weights."""
    start, stop = span.start * scale, 1 + (span.end - 1) * scale
    left = 0 if span.left == 0 else 1 + (span.left - 1) * scale
    return slice(start, stop), trapezoid(stop - start, left, span.right * scale, left_from_zero=True)


# ---- encoding -------------------------------------------------------------------------------------------
# Encoder tiles are cut in pixels and frames and joined in the latent with 0/1 weights: each later tile's
# first latents (those that saw the tile's edge, not the clip's content) are dropped where the previous tile
# already covers them.


def split_frames(length: int, size: int, overlap: int) -> list[Span]:
    """Temporal encoder tiles in frames: each but the last is one frame longer (1 + 8k frames), no right ramp."""
    spans = split_symmetric(length, size, overlap)
    if len(spans) == 1:
        return spans
    return [Span(s.start, s.end + 1 if i < len(spans) - 1 else s.end, s.left, 0) for i, s in enumerate(spans)]


def frames_to_latent(span: Span, scale: int) -> tuple[slice, Tensor]:
    """Latent frames a temporal encoder tile writes, and which of them count (0 for the dropped ones)."""
    start, stop = span.start // scale, (span.end - 1) // scale + 1
    w = torch.ones(stop - start)
    w[: 0 if span.left == 0 else 1 + (span.left - 1) // scale] = 0
    return slice(start, stop), w


def pixels_to_latent(span: Span, scale: int) -> tuple[slice, Tensor]:
    """Latent rows/columns a spatial encoder tile writes, and which of them count."""
    start, stop = span.start // scale, span.end // scale
    w = torch.ones(stop - start)
    left = max(0, span.left // scale - 1)
    if left:
        w[:left] = 0
    if span.right:
        w[-1:] = 0
    return slice(start, stop), w
