"""FLOW as pictures: the standard colour wheel (hue = direction, value = magnitude)."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def flow_to_image(flow: torch.Tensor, max_magnitude: float | None = None) -> torch.Tensor:
    """FLOW [N,H,W,2] -> IMAGE [N,H,W,3] float 0..1.

    Hue is the direction (0 degrees = moving right, turning through down at 90, as OpenCV's y points down),
    saturation is full, value is magnitude / max_magnitude (default: the largest vector in the whole flow,
    so all frames share one scale). Still pixels are black.
    """
    f = flow.detach().float().cpu().numpy()
    if f.ndim != 4 or f.shape[-1] != 2:
        raise ValueError(f"flow has shape {f.shape}; expected FLOW [N,H,W,2]")
    f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    mag, ang = cv2.cartToPolar(f[..., 0].reshape(-1), f[..., 1].reshape(-1), angleInDegrees=True)
    mag, ang = mag.reshape(f.shape[:3]), ang.reshape(f.shape[:3])
    top = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    hsv = np.empty((*f.shape[:3], 3), np.float32)
    hsv[..., 0] = ang  # float HSV in OpenCV: hue 0..360, s and v 0..1
    hsv[..., 1] = 1.0
    hsv[..., 2] = np.clip(mag / top, 0, 1) if top > 0 else 0.0
    rgb = np.stack([cv2.cvtColor(x, cv2.COLOR_HSV2RGB) for x in hsv])
    return torch.from_numpy(np.clip(rgb, 0, 1))
