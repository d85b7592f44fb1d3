"""Optical flow nodes: extract from frames, camera presets, the colour-wheel view. FLOW travels as AIPROD_FLOW,
a float32 tensor [T-1,H,W,2] in pixels per frame."""

from __future__ import annotations

import torch

from aiprod_core.flow import METHODS, PRESETS, camera_flow, check_flow, extract_flow, flow_to_image

from . import host

MAX = 8192


class FlowExtractor:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The reference clip's frames [T,H,W,3]; at least 2"}),
            "method": (list(METHODS), {"default": "dis-fast", "tooltip": "dis-ultrafast/fast/medium: OpenCV DIS, "
                       "faster to finer; farneback: OpenCV dense; raft: torchvision RAFT, needs local weights"}),
            "consistency": ("BOOLEAN", {"default": False, "tooltip": "Also check the flow backwards (twice the time); "
                            "the mask marks pixels whose flow is consistent both ways"}),
        }}

    RETURN_TYPES = ("AIPROD_FLOW", "IMAGE", "MASK")
    RETURN_NAMES = ("flow", "preview", "consistent")
    FUNCTION = "extract"
    CATEGORY = "AIPROD/flow"
    DESCRIPTION = "Optical flow between consecutive frames, with a colour-wheel preview (hue = direction, brightness = speed)."

    def extract(self, image, method, consistency):
        host.check_interrupt()
        res = extract_flow(image, method, consistency=consistency)
        mask = res.valid.float() if res.valid is not None else torch.ones(res.flow.shape[:3])
        return (res.flow, flow_to_image(res.flow), mask)


class CameraMotion:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "preset": (list(PRESETS), {"default": "pan-left", "tooltip": "The camera move; the picture moves the other way "
                       "(pan-left moves it right, zoom-in spreads it out)"}),
            "speed": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                "tooltip": "1 = 2.5% of the short side (pan/tilt), 2.5% scale (zoom) or 1.5 degrees (roll) per frame"}),
            "frames": ("INT", {"default": 17, "min": 1, "max": 1025, "tooltip": "Clip length; match the latent's frames"}),
            "width": ("INT", {"default": 64, "min": 8, "max": MAX, "step": 8, "tooltip": "Pixels; match the latent's width"}),
            "height": ("INT", {"default": 64, "min": 8, "max": MAX, "step": 8, "tooltip": "Pixels; match the latent's height"}),
        }}

    RETURN_TYPES = ("AIPROD_FLOW",)
    RETURN_NAMES = ("flow",)
    FUNCTION = "make"
    CATEGORY = "AIPROD/flow"
    DESCRIPTION = "The flow of a camera move, for the Hybrid Sampler's flow input."

    def make(self, preset, speed, frames, width, height):
        if frames < 2:
            raise ValueError(f"frames={frames}: a camera move needs at least 2 frames")
        return (camera_flow(preset, frames, height, width, speed),)


class FlowVisualize:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "flow": ("AIPROD_FLOW", {"tooltip": "A flow from the Flow Extractor or Camera Motion"}),
            "max_magnitude": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1000.0, "step": 0.5,
                                        "tooltip": "Pixels per frame shown at full brightness; 0 = the largest in the flow"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "show"
    CATEGORY = "AIPROD/flow"
    DESCRIPTION = "The standard colour wheel: hue = direction, brightness = speed; still pixels are black."

    def show(self, flow, max_magnitude):
        return (flow_to_image(check_flow(flow), max_magnitude or None),)
