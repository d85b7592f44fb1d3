"""Checks and resampling of FLOW tensors [N,H,W,2] (pixels per frame), shared by warping, nodes and eval."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def check_flow(flow: torch.Tensor, what: str = "flow") -> torch.Tensor:
    """A float32 [N,H,W,2] flow with finite values. NaN or infinite values are refused (they usually mean a
    broken source, and no fallback would be honest); vectors longer than the frame are clipped to the frame
    size (they carry no more information: the pixel left the frame), with a note in the log."""
    if not isinstance(flow, torch.Tensor):
        flow = torch.as_tensor(flow)
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"{what} has shape {tuple(flow.shape)}; expected FLOW [N,H,W,2] (dx, dy in pixels per frame)")
    if flow.shape[0] < 1:
        raise ValueError(f"{what} is empty (0 frame pairs); extract it from a clip of at least 2 frames")
    flow = flow.float()
    bad = ~torch.isfinite(flow)
    if bad.any():
        raise ValueError(
            f"{what} has {int(bad.sum())} NaN or infinite values out of {flow.numel()}; extract the flow again "
            "or replace those values before using it"
        )
    limit = float(max(flow.shape[1], flow.shape[2]))
    mag = flow.norm(dim=-1, keepdim=True)
    if (mag > limit).any():
        log.warning("%s: %d vectors are longer than the frame (%g px, largest %.3g); clipped to %g px",
                    what, int((mag > limit).sum()), limit, float(mag.max()), limit)
        flow = flow * (limit / mag.clamp_min(limit))
    return flow


def resize_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N,H,W,2] -> [N,height,width,2]: resampled (area when shrinking, bilinear when growing) and the vectors
    scaled by the same factors, so they stay in pixels of the new size."""
    _n, h, w, _ = flow.shape
    if (h, w) == (height, width):
        return flow
    x = flow.permute(0, 3, 1, 2)
    if height <= h and width <= w:
        x = F.interpolate(x, size=(height, width), mode="area")
    else:
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    scale = torch.tensor([width / w, height / h], dtype=x.dtype).view(1, 2, 1, 1)
    return (x * scale).permute(0, 2, 3, 1).contiguous()


def fit_flow_length(flow: torch.Tensor, pairs: int, what: str = "flow") -> torch.Tensor:
    """[N,H,W,2] -> [pairs,H,W,2]. A longer flow is cut; a shorter one is continued with its last frame pair
    (the motion goes on as it last was), with a note in the log."""
    n = flow.shape[0]
    if n == pairs:
        return flow
    if n > pairs:
        return flow[:pairs]
    log.warning("%s covers %d frame pairs but the clip needs %d; the last pair's motion is repeated", what, n, pairs)
    return torch.cat([flow, flow[-1:].expand(pairs - n, -1, -1, -1)])


def fit_flow(flow: torch.Tensor, frames: int, height: int, width: int, what: str = "flow") -> torch.Tensor:
    """Check a flow and bring it to a clip of `frames` frames at height x width: [frames-1,height,width,2]."""
    flow = check_flow(flow, what)
    if flow.shape[1:3] != (height, width):
        log.warning("%s is %dx%d but the clip is %dx%d; resized (vectors scaled to the new size)",
                    what, flow.shape[2], flow.shape[1], width, height)
        flow = resize_flow(flow, height, width)
    return fit_flow_length(flow, max(frames - 1, 0), what)
