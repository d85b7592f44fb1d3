"""Camera-motion presets as FLOW [T-1,H,W,2] in pixels per frame.

A preset names what the camera does, as a camera operator says it; the flow is the image motion that
results, which goes the other way: pan-left moves the picture right, tilt-up moves it down, zoom-in
spreads it out from the centre, rotate-cw (the camera rolls clockwise) turns it anticlockwise on screen.

speed 1 means: pan/tilt 2.5% of the frame's short side per frame, zoom 2.5% scale per frame, roll 1.5
degrees per frame (a 17-frame clip at 64x64 then pans about 26 pixels).
"""

from __future__ import annotations

import math

import numpy as np
import torch

PRESETS = ("pan-left", "pan-right", "tilt-up", "tilt-down", "zoom-in", "zoom-out", "rotate-cw", "rotate-ccw")
STEP = 0.025  # per frame at speed 1: short side fraction (pan/tilt) or relative scale (zoom)
ROLL_DEG = 1.5


def parse_camera(text: str) -> tuple[str, float]:
    """"pan-left" or "pan-left:1.5" -> (preset, speed)."""
    name, _, speed = text.partition(":")
    if name not in PRESETS:
        raise ValueError(f"camera preset {name!r} is unknown; choose one of {PRESETS}, optionally with :speed (pan-left:1.5)")
    try:
        value = float(speed) if speed else 1.0
    except ValueError as e:
        raise ValueError(f"camera speed {speed!r} in {text!r} is not a number; write e.g. {name}:1.5") from e
    return name, value


def camera_field(preset: str, height: int, width: int, speed: float = 1.0) -> torch.Tensor:
    """One frame pair's flow [H,W,2] of a preset."""
    if preset not in PRESETS:
        raise ValueError(f"camera preset {preset!r} is unknown; choose one of {PRESETS}")
    if not math.isfinite(speed) or speed < 0:
        raise ValueError(f"camera speed={speed} must be a finite number >= 0 (1 is the default pace)")
    if height < 1 or width < 1:
        raise ValueError(f"camera flow of {width}x{height} pixels: both sides must be >= 1")
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    dx, dy = xs - (width - 1) / 2, ys - (height - 1) / 2  # from the centre, y down
    zero = torch.zeros_like(xs)
    step = STEP * speed * min(height, width)
    kind, way = preset.split("-")
    if kind == "pan":
        u, v = zero + (step if way == "left" else -step), zero
    elif kind == "tilt":
        u, v = zero, zero + (step if way == "up" else -step)
    elif kind == "zoom":
        k = STEP * speed if way == "in" else 1 / (1 + STEP * speed) - 1
        u, v = dx * k, dy * k
    else:
        # the camera rolls clockwise: the picture turns anticlockwise on screen (y down)
        a = math.radians(ROLL_DEG * speed) * (1 if way == "cw" else -1)  # a > 0: anticlockwise on screen
        c, s = math.cos(a), math.sin(a)
        u, v = c * dx + s * dy - dx, -s * dx + c * dy - dy
    return torch.stack([u, v], dim=-1)


def camera_affine(preset: str, height: int, width: int, speed: float = 1.0, frames: int = 1) -> np.ndarray:
    """The 2x3 affine map (pixel coordinates, OpenCV's convention) that moves the picture `frames` frames of a
    preset on: one step of it is exactly the field of `camera_field`, p -> p + field(p)."""
    if height < 2 or width < 2:
        raise ValueError(f"a camera move needs a frame of at least 2x2 pixels, not {width}x{height}")
    field = camera_field(preset, height, width, speed).double().numpy()
    # the field is affine in p, so three pixels fix it: (0, 0), one to the right, one down
    f0, fx, fy = field[0, 0], field[0, 1], field[1, 0]
    step = np.eye(3)
    step[:2, 0] += fx - f0
    step[:2, 1] += fy - f0
    step[:2, 2] = f0
    return np.linalg.matrix_power(step, frames)[:2]


def camera_flow(preset: str, frames: int, height: int, width: int, speed: float = 1.0) -> torch.Tensor:
    """FLOW [frames-1,H,W,2] of a preset at constant speed (a one-frame clip gives an empty flow)."""
    if frames < 1:
        raise ValueError(f"frames={frames} must be >= 1")
    return camera_field(preset, height, width, speed).expand(frames - 1, -1, -1, -1).contiguous()


def dominant_preset(flow: torch.Tensor) -> tuple[str, dict[str, float]]:
    """The preset whose field best matches a flow [N,H,W,2] (highest cosine similarity over all pairs), with
    every preset's similarity: the dominant camera-like motion of a clip."""
    _n, h, w, _ = flow.shape
    mean = flow.float().mean(0)
    sims = {}
    for p in PRESETS:
        ref = camera_field(p, h, w)
        sims[p] = float((mean * ref).sum() / (mean.norm() * ref.norm()).clamp_min(1e-8))
    return max(sims, key=sims.get), sims
