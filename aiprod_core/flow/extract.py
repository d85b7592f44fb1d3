"""Optical flow from frames or a video file: OpenCV DIS and Farneback, RAFT through torchvision.

FLOW is float32 [T-1,H,W,2] in pixels per frame: flow[t, y, x] = (dx, dy) takes the pixel at (x, y) of
frame t to (x + dx, y + dy) in frame t + 1 (forward flow, OpenCV's convention).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

log = logging.getLogger(__name__)

DIS_PRESETS = {
    "dis-ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "dis-fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "dis-medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
METHODS = (*DIS_PRESETS, "farneback", "raft")
RAFT_WEIGHTS_ENV = "AIPROD_RAFT_WEIGHTS"


@dataclass
class FlowResult:
    """flow: float32 [T-1,H,W,2]; valid: bool [T-1,H,W] forward-backward consistent pixels, or None."""

    flow: torch.Tensor
    valid: torch.Tensor | None = None


def gray_frames(frames: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """[T,H,W,3] RGB float 0..1 or uint8 (numpy or torch) -> T uint8 [H,W] luma frames (a list: no stacking copy)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames have shape {tuple(frames.shape)}; expected [T,H,W,3] RGB (IMAGE or a video's frames)")
    if frames.dtype != np.uint8:
        frames = np.clip(np.asarray(frames, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]


def _farneback(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    # OpenCV's documented example settings (samples/python/opt_flow.py)
    return cv2.calcOpticalFlowFarneback(a, b, out, 0.5, 3, 15, 3, 5, 1.2, 0)


def _pairs(gray: list[np.ndarray], method: str, reverse: bool = False) -> np.ndarray:
    """Flow [T-1,H,W,2] float32 for consecutive pairs of T uint8 [H,W] frames."""
    calc = cv2.DISOpticalFlow_create(DIS_PRESETS[method]).calc if method in DIS_PRESETS else _farneback
    n = len(gray) - 1
    out = np.empty((n, *gray[0].shape, 2), np.float32)
    for i in range(n):
        a, b = (gray[i + 1], gray[i]) if reverse else (gray[i], gray[i + 1])
        # OpenCV allocates each result and it is copied while still in cache; the freed block is reused for
        # the next pair. (OpenCV 5's DIS reads a given destination as its starting flow: never pass one.)
        out[i] = calc(a, b, None)
    return out


def raft_model(weights: str | os.PathLike | None = None):
    """torchvision's RAFT-large with weights from a local .safetensors file (never downloaded)."""
    try:
        from torchvision.models.optical_flow import raft_large
    except ImportError as e:
        raise ValueError(
            "method='raft' needs torchvision, which is not installed; install it (pip install torchvision) "
            "or use dis-fast, dis-medium or farneback"
        ) from e
    path = weights or os.environ.get(RAFT_WEIGHTS_ENV)
    if not path or not Path(path).is_file():
        raise ValueError(
            f"method='raft' needs RAFT-large weights as a local .safetensors file (got {path!r}); nothing is "
            f"downloaded. Convert torchvision's raft_large weights to safetensors once and pass the path, or set "
            f"{RAFT_WEIGHTS_ENV}; or use dis-fast"
        )
    if Path(path).suffix not in (".safetensors", ".sft"):
        raise ValueError(f"{path}: RAFT weights are read from .safetensors only (pickle files can run code)")
    from safetensors.torch import load_file

    model = raft_large(weights=None)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


@torch.no_grad()
def _raft(frames: np.ndarray, weights, reverse: bool = False) -> np.ndarray:
    model = raft_model(weights)
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()
    x = (x / 255 if frames.dtype == np.uint8 else x).permute(0, 3, 1, 2) * 2 - 1  # RAFT takes [-1, 1]
    h, w = x.shape[-2:]
    ph, pw = -h % 8, -w % 8  # RAFT needs sides divisible by 8
    x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    a, b = (x[1:], x[:-1]) if reverse else (x[:-1], x[1:])
    flows = [model(a[i : i + 1], b[i : i + 1])[-1][0] for i in range(len(a))]
    return torch.stack(flows)[:, :, :h, :w].permute(0, 2, 3, 1).contiguous().numpy()


def consistency_mask(forward: np.ndarray, backward: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Forward-backward check (Sundaram et al. 2010): a pixel is valid when following its forward flow and then
    the backward flow there comes back within `alpha (|f|^2 + |b|^2) + beta` squared pixels. [N,H,W,2] -> bool [N,H,W]."""
    n, h, w, _ = forward.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    valid = np.empty((n, h, w), bool)
    for i in range(n):
        f = forward[i]
        b = cv2.remap(backward[i], gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = ((f + b) ** 2).sum(-1)
        valid[i] = err <= alpha * ((f**2).sum(-1) + (b**2).sum(-1)) + beta
        inside = (gx + f[..., 0] >= 0) & (gx + f[..., 0] <= w - 1) & (gy + f[..., 1] >= 0) & (gy + f[..., 1] <= h - 1)
        valid[i] &= inside
    return valid


def extract_flow(
    frames: np.ndarray | torch.Tensor,
    method: str = "dis-fast",
    consistency: bool = False,
    raft_weights: str | os.PathLike | None = None,
) -> FlowResult:
    """Flow between consecutive frames [T,H,W,3] (float 0..1 or uint8): FLOW [T-1,H,W,2] float32 pixels/frame.

    consistency: also compute the backward flow and return the forward-backward consistency mask (twice the cost).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {METHODS}")
    n = len(frames)
    if n < 2:
        raise ValueError(f"optical flow needs at least 2 frames; got {n}. A one-frame clip has no motion to follow")
    if method == "raft":
        rgb = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        fwd = _raft(rgb, raft_weights)
        bwd = _raft(rgb, raft_weights, reverse=True) if consistency else None
    else:
        gray = gray_frames(frames)
        fwd = _pairs(gray, method)
        bwd = _pairs(gray, method, reverse=True) if consistency else None
    valid = torch.from_numpy(consistency_mask(fwd, bwd)) if consistency else None
    return FlowResult(torch.from_numpy(fwd), valid)


def extract_flow_from_file(path: str | os.PathLike, method: str = "dis-fast", max_frames: int | None = None,
                           consistency: bool = False) -> tuple[FlowResult, np.ndarray, float]:
    """(flow, frames uint8 [T,H,W,3], fps) of a video file."""
    from ..video_io import read_video

    frames, fps = read_video(path, max_frames=max_frames)
    return extract_flow(frames, method, consistency), frames, fps
