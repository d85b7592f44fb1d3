"""2x spatial latent upscaler in the layout of LTX-Video's LatentUpsampler.

initial conv + GroupNorm + SiLU -> ResBlocks -> per-frame Conv2d + PixelShuffle(2) -> ResBlocks -> final conv.
It works on raw (un-normalised) latents, as LTX's does; `upsample_latent` handles the VAE statistics.
Shapes: z [B,C,t,h,w] -> [B,C,t,2h,2w].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import UpscalerConfig
from .layers import conv3d
from .vae import CausalVideoVAE


def _groups(channels: int) -> int:
    # 32 groups as LTX when the width allows; the config guarantees a multiple of 8.
    return 32 if channels % 32 == 0 else 8


class UpscalerResBlock(nn.Module):
    """conv-GN-SiLU-conv-GN, SiLU after the residual add. x [B,C,t,h,w] -> [B,C,t,h,w]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(_groups(channels), channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(channels), channels)

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.norm1(conv3d(self.conv1, x)))
        h = self.norm2(conv3d(self.conv2, h))
        return F.silu(x + h)


class LatentUpscaler(nn.Module):
    """Doubles the latent's height and width: raw latent [B,C,t,h,w] -> [B,C,t,2h,2w]."""

    def __init__(self, cfg: UpscalerConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c, mid = cfg.latent_channels, cfg.mid_channels
        self.initial_conv = nn.Conv3d(c, mid, 3, padding=1)
        self.initial_norm = nn.GroupNorm(_groups(mid), mid)
        self.res_blocks = nn.ModuleList(UpscalerResBlock(mid) for _ in range(cfg.blocks_per_stage))
        # Spatial only: frames are upsampled one by one, time is left to the 3D blocks.
        self.upsampler = nn.Sequential(nn.Conv2d(mid, 4 * mid, 3, padding=1), nn.PixelShuffle(2))
        self.post_upsample_res_blocks = nn.ModuleList(
            UpscalerResBlock(mid) for _ in range(cfg.blocks_per_stage)
        )
        self.final_conv = nn.Conv3d(mid, c, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        c = self.cfg.latent_channels
        if not isinstance(z, Tensor) or z.ndim != 5 or z.shape[1] != c:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(
                f"upscaler input has shape {shape}; expected a latent [B,{c},t,h,w] "
                f"with {c} channels (the VAE's latent_channels)"
            )
        x = F.silu(self.initial_norm(conv3d(self.initial_conv, z.to(self.final_conv.weight.dtype))))
        for block in self.res_blocks:
            x = block(x)
        b, m, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, m, h, w)
        x = self.upsampler(x)
        x = x.reshape(b, t, m, 2 * h, 2 * w).transpose(1, 2)
        for block in self.post_upsample_res_blocks:
            x = block(x)
        return conv3d(self.final_conv, x)


def upsample_latent(upscaler: LatentUpscaler, vae: CausalVideoVAE, z: Tensor) -> Tensor:
    """Normalised latent [B,C,t,h,w] -> normalised latent [B,C,t,2h,2w].

    The upscaler was trained on raw latents, so the VAE statistics are undone before and re-applied
    after, as LTX's upsample_video does.
    """
    if upscaler.cfg.latent_channels != vae.cfg.latent_channels:
        raise ValueError(
            f"upscaler takes {upscaler.cfg.latent_channels} latent channels but the VAE has "
            f"{vae.cfg.latent_channels}; load the upscaler that belongs to this VAE"
        )
    return vae.normalize(upscaler(vae.unnormalize(z)))
