"""Classifier-free guidance around a backbone, as a velocity function for the samplers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .samplers import Velocity


def pad_context(a: torch.Tensor, b: torch.Tensor, ma: torch.Tensor, mb: torch.Tensor):
    """Pad two [B,L,D] contexts (and [B,L] masks) to the same length so they share one batch."""
    n = max(a.shape[1], b.shape[1])

    def pad(c, m):
        extra = n - c.shape[1]
        return F.pad(c, (0, 0, 0, extra)), F.pad(m.bool(), (0, extra), value=False)

    (a, ma), (b, mb) = pad(a, ma), pad(b, mb)
    return a, b, ma, mb


def guided_velocity(
    backbone: torch.nn.Module,
    context: torch.Tensor,
    mask: torch.Tensor,
    neg_context: torch.Tensor | None = None,
    neg_mask: torch.Tensor | None = None,
    cfg: float = 1.0,
) -> Velocity:
    """`v = v_neg + cfg (v_pos - v_neg)` (Ho & Salimans 2022); both halves run as one batch.

    context: [B,L,D] positive text states, mask [B,L]; the negative defaults to no guidance when
    cfg == 1 or no negative is given.
    """
    if cfg == 1.0 or neg_context is None:

        def velocity(x, sigma):
            return backbone(x, sigma, context, mask)

        return velocity

    if neg_mask is None:
        neg_mask = torch.ones(neg_context.shape[:2], dtype=torch.bool, device=neg_context.device)
    pos, neg, pm, nm = pad_context(context, neg_context, mask, neg_mask)
    if neg.shape[0] != pos.shape[0]:
        neg, nm = neg.expand(pos.shape[0], -1, -1), nm.expand(pos.shape[0], -1)
    both, both_mask = torch.cat([pos, neg]), torch.cat([pm, nm])

    def velocity(x, sigma):
        v_pos, v_neg = backbone(torch.cat([x, x]), torch.cat([sigma, sigma]), both, both_mask).chunk(2)
        return v_neg + cfg * (v_pos - v_neg)

    return velocity
