"""VAE decode: LATENT -> IMAGE frames, chunked in time and tiled in space."""

from __future__ import annotations

import uuid

import torch

from aiprod_core.families.ltx2.vae_config import LTX2VAEConfig
from aiprod_core.memory.ltx2_sizes import vae_decode_bytes as ltx2_decode_bytes
from aiprod_core.memory.placement import Placement, vae_decode_room
from aiprod_core.models.vae import VAE_CHUNK, decode_latent
from aiprod_core.video_io import write_video

from . import host


class VAEDecode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": ("AIPROD_VAE", {"tooltip": "The model's VAE"}),
            "latent": ("LATENT", {"tooltip": "A sampled video latent"}),
            "temporal_chunk": ("INT", {"default": 0, "min": 0, "max": 256,
                                       "tooltip": "Latent frames decoded at once; 0 = auto. Exact: any value gives the same video"}),
            "spatial_tile": ("INT", {"default": 0, "min": 0, "max": 1024,
                                     "tooltip": "Tile size in latent pixels; 0 = auto (whole when it fits). Lowers memory, blends seams"}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "AIPROD"
    DESCRIPTION = "Frames [T,H,W,3] (batches one after another) for core SaveVideo, SaveAnimatedWEBP or VideoHelperSuite."

    @torch.no_grad()
    def decode(self, vae, latent, temporal_chunk, spatial_tile):
        z = latent["samples"].float()
        if z.ndim != 5 or z.shape[1] != vae.cfg.latent_channels:
            raise ValueError(f"latent has shape {tuple(z.shape)}; expected [B,{vae.cfg.latent_channels},t,h,w] for this VAE")
        latent_grid, dtype = tuple(z.shape[2:]), next(vae.decoder.parameters()).dtype
        ltx2 = isinstance(vae.cfg, LTX2VAEConfig)
        room = (ltx2_decode_bytes(vae.cfg, latent_grid, VAE_CHUNK, 0, dtype.itemsize) if ltx2
                else vae_decode_room(vae.cfg, latent_grid, dtype))
        frames = []
        # on ComfyUI's device, the decoder alone; then chunks and tiles planned for what is left (one batch item at a
        # time); an out-of-memory error names the stage and what to lower. LTX-2's decoder is not planned here: it
        # decodes VAE_CHUNK latent frames at a time, tiled above 64x64 latent pixels, unless told otherwise
        with host.placed(vae, ("decoder",), room) as device:
            budget = host.memory_budget()
            placement = Placement.for_vae_decode(vae.cfg, latent_grid, device, vram_gb=None if ltx2 else budget.vram_gb,
                                                 offload=budget.offload, dtype=dtype)
            chunk, tile = placement.decode_chunks(temporal_chunk, spatial_tile)
            with placement.guard("vae_decode"):
                for i in range(z.shape[0]):
                    host.check_interrupt()
                    frames.append(decode_latent(vae, z[i : i + 1].to(device), chunk, tile, to_cpu=True)[0])
        video = torch.cat(frames).cpu()
        # a WebM in ComfyUI's temp folder for the inline player of the web extension
        name = f"aiprod_preview_{uuid.uuid4().hex[:12]}.webm"
        write_video(host.temp_dir() / name, video, fps=float(latent.get("fps", 8)))
        preview = {"filename": name, "subfolder": "", "type": "temp", "format": "video/webm"}
        return {"ui": {"aiprod_video": [preview]}, "result": (video,)}

