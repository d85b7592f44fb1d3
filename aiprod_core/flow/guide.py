"""The guidance flow of a generation: from a reference clip or a camera preset, at the clip's size."""

from __future__ import annotations

import logging
import os

import torch

from .camera import camera_flow, parse_camera
from .extract import extract_flow_from_file
from .ops import fit_flow

log = logging.getLogger(__name__)


def guidance_flow(
    frames: int,
    height: int,
    width: int,
    motion_from: str | os.PathLike | None = None,
    camera: str | None = None,
    method: str = "dis-fast",
) -> torch.Tensor | None:
    """FLOW [frames-1,height,width,2] from a video file (`motion_from`; its flow is resized to the clip and cut
    or continued to its length, with a note) or a camera preset "name[:speed]"; None when neither is given."""
    if motion_from and camera:
        raise ValueError("give either a reference clip (--motion-from) or a camera preset (--camera), not both")
    if camera:
        name, speed = parse_camera(camera)
        return camera_flow(name, frames, height, width, speed)
    if not motion_from:
        return None
    # read only the frames the clip needs (one more pair is harmless)
    res, clip, _ = extract_flow_from_file(motion_from, method, max_frames=frames)
    log.info("motion from %s: %d frames of %dx%d", motion_from, len(clip), clip.shape[2], clip.shape[1])
    return fit_flow(res.flow, frames, height, width, f"flow of {os.path.basename(str(motion_from))}")
