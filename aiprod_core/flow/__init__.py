"""Optical flow: extraction (OpenCV DIS/Farneback, RAFT), camera presets, visualisation, noise warping."""

from .camera import PRESETS, camera_flow, dominant_preset, parse_camera
from .extract import METHODS, FlowResult, extract_flow, extract_flow_from_file
from .guide import guidance_flow
from .ops import check_flow, fit_flow, resize_flow
from .visualize import flow_to_image
from .warp import warp_noise

__all__ = [
    "METHODS",
    "PRESETS",
    "FlowResult",
    "camera_flow",
    "check_flow",
    "dominant_preset",
    "extract_flow",
    "extract_flow_from_file",
    "fit_flow",
    "flow_to_image",
    "guidance_flow",
    "parse_camera",
    "resize_flow",
    "warp_noise",
]
