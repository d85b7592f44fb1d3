"""The exact optical flow of a world clip, from its scene: what training with warped noise follows."""

from __future__ import annotations

import numpy as np
import torch

from .scenes import Scene, _shape_sdf, object_path


def world_flow(scene: Scene, frames: int, height: int, width: int) -> torch.Tensor:
    """FLOW [frames-1,H,W,2] in pixels per frame: each pixel an object covers at frame t moves with that object
    to frame t+1 (the front object wins where they overlap); the black background is still. Under a camera move
    (whose scenes have only still objects) every pixel moves with the camera, background included."""
    if scene.camera is not None:
        from ..flow.camera import camera_flow

        return camera_flow(scene.camera, frames, height, width, scene.camera_speed)
    scale = min(height, width) / min(scene.extent)
    px = (np.arange(width) + 0.5) / scale
    py = (np.arange(height) + 0.5) / scale
    gx, gy = np.meshgrid(px, py)
    flow = np.zeros((max(frames - 1, 0), height, width, 2), np.float32)
    for obj in scene.objects:  # back to front, as render() paints them
        path = object_path(obj, frames, scene.extent)
        for t in range(frames - 1):
            inside = _shape_sdf(obj.shape, obj.size, gx - path[t, 0], gy - path[t, 1]) < 0
            flow[t][inside] = (path[t + 1] - path[t]) * scale
    return torch.from_numpy(flow)
