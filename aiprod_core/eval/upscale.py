"""Does the 2x latent upscaler beat bicubic? PSNR against the world's own render at twice the size.

For each clip: render it at 2x, downscale by area to 1x, encode, then compare
(a) decode(upsample_latent(z)) and (b) bicubic 2x of decode(z), both against the 2x render.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ..model import VideoModel
from ..models.upscaler import upsample_latent
from ..train.data import area_downscale, item_seed, video_tensor
from ..world import EASY, MOTIONS, make_clip


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [-1,1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.clamp(-1, 1), b.clamp(-1, 1)).item()
    return float(10 * np.log10(4.0 / max(mse, 1e-12)))


@torch.no_grad()
def upscaler_vs_bicubic(model: VideoModel, clips: int = 16, seed: int = 0) -> dict:
    if model.upscaler is None:
        raise ValueError(f"{model.source} has no upscaler to measure")
    c = model.config
    spec = dataclasses.replace(EASY, frames=c.frames, height=2 * c.height, width=2 * c.width, objects=(1, 2), motions=MOTIONS)
    ours, bicubic = [], []
    for i in range(clips):
        hi = video_tensor(make_clip(item_seed(seed, 7, i), spec).frames)[None]  # [1,3,F,2H,2W]
        z = model.vae.encode(area_downscale(hi, 2))
        up = model.vae.decode(upsample_latent(model.upscaler, model.vae, z))
        base = model.vae.decode(z)[0].transpose(0, 1)  # [F,3,H,W]
        bic = F.interpolate(base, scale_factor=2, mode="bicubic", align_corners=False).transpose(0, 1)[None]
        ours.append(psnr(up, hi))
        bicubic.append(psnr(bic, hi))
    return {
        "model": model.source,
        "clips": clips,
        "size": f"{c.width}x{c.height} -> {2 * c.width}x{2 * c.height}",
        "psnr_upscaler_db": round(float(np.mean(ours)), 2),
        "psnr_bicubic_db": round(float(np.mean(bicubic)), 2),
        "upscaler_wins": int(sum(o > bc for o, bc in zip(ours, bicubic))),
    }
