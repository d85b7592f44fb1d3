"""2x latent upscale (follow with the sampler at denoise < 1 to refine)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from aiprod_core.memory.engine import stage_guard
from aiprod_core.memory.ltx2_sizes import upscaler_bytes as ltx2_upscaler_bytes
from aiprod_core.memory.placement import upscale_room
from aiprod_core.model import AIPROD, LTX2
from aiprod_core.models.upscaler import LatentUpscaler

from . import host


class LatentUpscale:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "upscaler": ("AIPROD_UPSCALER", {"tooltip": "The model's 2x latent upscaler"}),
            "vae": ("AIPROD_VAE", {"tooltip": "The model's VAE (its latent statistics)"}),
            "latent": ("LATENT", {"tooltip": "A sampled video latent"}),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "AIPROD/latent"
    DESCRIPTION = "Doubles width and height in latent space; refine with the sampler at denoise ~0.4."

    @torch.no_grad()
    def upscale(self, upscaler, vae, latent):
        z = latent["samples"].float()
        aiprod = isinstance(upscaler, LatentUpscaler)  # else LTX-2's spatial upscaler
        channels = upscaler.cfg.latent_channels if aiprod else upscaler.cfg.in_channels
        if z.ndim != 5 or z.shape[1] != channels:
            raise ValueError(f"latent has shape {tuple(z.shape)}; expected [B,{channels},t,h,w] of this model")
        # on ComfyUI's device: the upscaler with room for its activations, and of the VAE only its latent statistics
        dtype = next(upscaler.parameters()).dtype
        grid = tuple(z.shape[2:])
        room = (upscale_room(upscaler.cfg, grid, dtype, batch=z.shape[0]) if aiprod
                else ltx2_upscaler_bytes(upscaler.cfg, grid, dtype.itemsize)[1] * z.shape[0])
        family = AIPROD if aiprod else LTX2
        with host.placed(upscaler, None, room) as device, host.placed(vae, ()), stage_guard("upscaling"):
            up = family.upsample(SimpleNamespace(upscaler=upscaler, vae=vae), z.to(device))
            return ({**latent, "samples": up.float().cpu()},)
