"""Empty video latents, VAE encoding of frames (for video-to-video) and first frames to start from (image-to-video)."""

from __future__ import annotations

import torch

from aiprod_core.conditioning import continuation_frames, first_frames_condition, fit_frames, join_clips
from aiprod_core.families.ltx2.model import LTX2Geometry
from aiprod_core.memory.engine import stage_guard
from aiprod_core.models.vae import VAE_CHUNK

from . import host

MAX = 8192


def clip_size(batch_tooltip: str) -> dict:
    """The width, height, frames and batch inputs of a node that makes a video latent."""
    return {
        "width": ("INT", {"default": 64, "min": 8, "max": MAX, "step": 8, "tooltip": "Pixels; a multiple of the VAE's spatial compression"}),
        "height": ("INT", {"default": 64, "min": 8, "max": MAX, "step": 8, "tooltip": "Pixels; a multiple of the VAE's spatial compression"}),
        "frames": ("INT", {"default": 17, "min": 1, "max": 1025, "step": 1, "tooltip": "1 + k x the VAE's temporal compression (17, 21... for tiny)"}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": batch_tooltip}),
    }


def latent_shape(vae, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(C, t, h, w) of a clip's latent for either family's VAE; raises with the sizes to use instead."""
    cfg = vae.cfg if hasattr(vae.cfg, "latent_shape") else LTX2Geometry.of(vae.cfg)
    return cfg.latent_shape(frames, height, width)


class EmptyLatentVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": ("AIPROD_VAE", {"tooltip": "Sets the latent size: the VAE's compression and channels"}),
            **clip_size("Clips sampled at once"),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"
    CATEGORY = "AIPROD/latent"

    def make(self, vae, width, height, frames, batch_size):
        shape = latent_shape(vae, frames, height, width)  # raises with the sizes to use instead
        return ({"samples": torch.zeros(batch_size, *shape)},)


class VAEEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": ("AIPROD_VAE", {"tooltip": "The model's VAE"}),
            "image": ("IMAGE", {"tooltip": "Video frames [T,H,W,3]; T = 1 + k x temporal compression"}),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"
    CATEGORY = "AIPROD/latent"
    DESCRIPTION = "Frames -> latent, to continue from with the sampler's denoise < 1 (video-to-video)."

    @torch.no_grad()
    def encode(self, vae, image):
        video = image.permute(3, 0, 1, 2)[None].float() * 2 - 1  # [1,3,T,H,W] in [-1,1]
        with host.placed(vae, ("encoder",)), stage_guard("vae_encode"):  # the clip goes a few frames at a time
            return ({"samples": vae.encode(video, temporal_chunk=VAE_CHUNK).float().cpu()},)


class ExtendVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": ("AIPROD_VAE", {"tooltip": "The model's VAE: encodes the clip's last frames"}),
            "video": ("IMAGE", {"tooltip": "The clip to continue (its frames)"}),
            **clip_size("Continuations sampled at once"),
            "context": ("INT", {"default": 2, "min": 0, "max": 16, "tooltip":
                                "The continuation starts with the clip's last 1 + context x the VAE's temporal "
                                "compression frames (2: the last 9 for tiny); frames counts them too"}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                                   "How much of those frames the continuation keeps: 1 as given"}),
        }}

    RETURN_TYPES = ("LATENT", "IMAGE", "INT")
    RETURN_NAMES = ("latent", "video", "overlap")
    FUNCTION = "make"
    CATEGORY = "AIPROD/latent"
    DESCRIPTION = ("Video extension: a latent that starts with the clip's last frames (kept by a noise mask) for the "
                   "Hybrid Sampler to continue, the clip resized to width x height, and how many frames the "
                   "continuation repeats; AIPROD Join Clips puts the two together.")

    @torch.no_grad()
    def make(self, vae, video, width, height, frames, batch_size, context=2, strength=1.0):
        shape = (batch_size, *latent_shape(vae, frames, height, width))  # raises with the sizes to use instead
        last = continuation_frames(video, vae.cfg.temporal_compression, context)
        with host.placed(vae, ("encoder",)), stage_guard("vae_encode"):
            init, keep = first_frames_condition(vae, last, shape, strength)
        return ({"samples": init, "noise_mask": keep}, fit_frames(video.float(), height, width), last.shape[0])


class JoinClips:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "first": ("IMAGE", {"tooltip": "The clip that comes first"}),
            "second": ("IMAGE", {"tooltip": "The clip that continues it (one clip: batch size 1)"}),
            "overlap": ("INT", {"default": 0, "min": 0, "max": 1024, "tooltip":
                                "Frames at the start of the second clip that repeat the end of the first (AIPROD "
                                "Extend Video's overlap); they are dropped"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "join"
    CATEGORY = "AIPROD/latent"
    DESCRIPTION = "One clip from two: the first (resized to the second's size), then the second without its overlap."

    def join(self, first, second, overlap):
        return (join_clips(first, second, overlap),)


class ImageToVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": ("AIPROD_VAE", {"tooltip": "The model's VAE: encodes the image"}),
            "image": ("IMAGE", {"tooltip": "The clip's first frame (several frames: the clip continues them); "
                                           "centre-cropped and resized to width x height"}),
            **clip_size("Clips sampled at once, all from this image"),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                                   "How much of the image the first frames keep: 1 as given, less lets the sampler "
                                   "change them, 0 ignores the image"}),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"
    CATEGORY = "AIPROD/latent"
    DESCRIPTION = ("A latent whose first frames are the image's, with a noise mask that keeps them: the Hybrid Sampler "
                   "generates the rest of the clip from there (denoise 1).")

    @torch.no_grad()
    def make(self, vae, image, width, height, frames, batch_size, strength=1.0):
        shape = (batch_size, *latent_shape(vae, frames, height, width))  # raises with the sizes to use instead
        with host.placed(vae, ("encoder",)), stage_guard("vae_encode"):
            init, keep = first_frames_condition(vae, image, shape, strength)
        return ({"samples": init, "noise_mask": keep},)
