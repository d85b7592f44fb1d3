"""Latent-to-RGB preview factors of a VAE, fitted on still frames of the synthetic world: the colours ComfyUI
shows of a latent while it is sampled."""

from __future__ import annotations

import torch

from ..models.vae import CausalVideoVAE, latent_rgb_factors
from ..train.data import video_tensor
from ..world import MOTIONS, WorldSpec, make_clip


@torch.no_grad()
def preview_factors(vae: CausalVideoVAE, images: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent-to-RGB preview factors ([C,3], [3]) fitted on `images` still frames of the synthetic world."""
    side = 8 * vae.cfg.spatial_compression
    spec = WorldSpec(frames=1, height=side, width=side, objects=(1, 2), motions=MOTIONS, sizes=("normal", "large"))
    stills = torch.stack([video_tensor(make_clip(i, spec).frames)[:, 0] for i in range(images)])
    return latent_rgb_factors(vae, stills)
