"""Inputs to the sampling loop besides the prompt: the frames a clip starts with (image-to-video), the end of a clip
it continues (video extension), and how a flow steers its motion (MotionGuidance)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from .models.vae import VAE_CHUNK, CausalVideoVAE
from .sampling.motion import MotionGuidance
from .video_io import centre_crop

__all__ = [
    "EXTEND_CONTEXT",
    "MotionGuidance",
    "continuation_frames",
    "first_frames_condition",
    "fit_frames",
    "join_clips",
]

log = logging.getLogger(__name__)

EXTEND_CONTEXT = 2  # latent frames after the first that an extension starts from: its motion is read from them


@torch.no_grad()
def first_frames_condition(vae: CausalVideoVAE, frames: torch.Tensor, shape: tuple[int, ...],
                           strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-to-video: the initial latent and the noise mask that make a clip of latent `shape` start with `frames`.

    frames: [T,H,W,3] in 0..1 (one image: T = 1; [H,W,3] is taken as one), any size: centre-cropped to the clip's
    aspect and resized. The first 1 + k * temporal compression of them (as many as the clip holds) are encoded;
    the causal VAE gives them latent frames of their own, which the mask keeps (0) while the rest is generated.
    strength < 1 keeps them that much (mask 1 - strength): 0 is text-to-video.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"image strength {strength} is out of range; expected 0..1 (1 keeps the first frames as given)")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"image has shape {tuple(frames.shape)}; expected frames [T,H,W,3] (or one image [H,W,3]) in 0..1")
    _, _, t, h, w = shape
    tc, sc = vae.cfg.temporal_compression, vae.cfg.spatial_compression
    n = min(1 + (frames.shape[0] - 1) // tc, t)  # latent frames the given frames fill
    video = fit_frames(frames[: 1 + (n - 1) * tc].float(), h * sc, w * sc)
    # on the encoder's device a few latent frames at a time: a long clip to continue stays in CPU memory
    z = vae.encode(video.permute(3, 0, 1, 2)[None] * 2 - 1, temporal_chunk=VAE_CHUNK).float().cpu()
    init = torch.zeros(shape)
    init[:, :, :n] = z
    keep = torch.ones(1, 1, t, h, w)
    keep[:, :, :n] = 1 - strength
    return init, keep


def continuation_frames(frames: torch.Tensor, temporal_compression: int, context: int = EXTEND_CONTEXT) -> torch.Tensor:
    """Video extension: the last 1 + context x temporal compression frames of a clip [T,H,W,3], which a clip that
    continues it starts with (image-to-video keeps them: the causal VAE gives them 1 + context latent frames of
    their own). A shorter clip gives its last 1 + k x temporal compression frames. With context 1 (the last 5
    frames for tiny) the shipped model continued the world clips' direction in 38 of 48, with 2 in 47 of 48."""
    if context < 0:
        raise ValueError(f"context={context}; expected 0 or more latent frames after the last frame")
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise ValueError(f"clip has shape {tuple(frames.shape)}; expected frames [T,H,W,3]")
    n = 1 + min(context, (frames.shape[0] - 1) // temporal_compression) * temporal_compression
    return frames[-n:]


def join_clips(first: torch.Tensor, second: torch.Tensor, overlap: int) -> torch.Tensor:
    """Video extension: `first` [T1,H1,W1,3] then `second` [T2,H,W,3] without its first `overlap` frames, which
    repeat the end of `first`; `first` (0..1, or uint8 0..255) is centre-cropped and resized to the size of
    `second` a few frames at a time, so a long uint8 clip is never held in float32 at its own size."""
    if first.ndim != 4 or second.ndim != 4:
        raise ValueError(f"clips have shapes {tuple(first.shape)} and {tuple(second.shape)}; expected frames [T,H,W,3]")
    if not 0 <= overlap < second.shape[0]:
        raise ValueError(f"overlap={overlap} frames of a {second.shape[0]}-frame continuation; expected 0..{second.shape[0] - 1} "
                         "(the frames it starts with that repeat the end of the first clip)")
    scale = 255.0 if first.dtype == torch.uint8 else 1.0
    fitted = [fit_frames(first[i : i + 16].float() / scale, *second.shape[1:3]) for i in range(0, len(first), 16)]
    return torch.cat([*fitted, second[overlap:].float()])


def fit_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Frames [T,H,W,3] centre-cropped to the aspect of `width` x `height` and resized to it (a note in the log)."""
    _, fh, fw, _ = frames.shape
    if (fh, fw) == (height, width):
        return frames
    x = centre_crop(frames.permute(0, 3, 1, 2), height, width)
    log.info("frames of %dx%d centre-cropped to %dx%d and resized to the clip's %dx%d", fw, fh, x.shape[-1],
             x.shape[-2], width, height)
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)
