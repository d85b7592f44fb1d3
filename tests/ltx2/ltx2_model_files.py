"""A whole tiny LTX-2 model written in the layouts users have it, from Lightricks' reference modules (ltx-core)
and transformers' Gemma 3 with random weights, for tests/ltx2/test_ltx2_model.py and test_ltx2_cli.py.

- single: one checkpoint (transformer with its audio stream, text projection + connectors, video VAE; the config in
  the metadata), ComfyUI's Gemma 3 single file, the spatial upscaler file;
- split: ComfyUI's diffusion_models/ transformer (unprefixed, config in the metadata), vae/ file, text_encoders/
  Gemma file and text projection file, latent_upscale_models/ upscaler (the same weights as `single`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ltx2_files import (
    RELEASED_PREFIXES,
    RELEASED_TINY_VAE,
    TINY_TRANSFORMER,
    ReferenceVAE,
    reference_transformer,
    write_upscaler,
)
from safetensors import safe_open
from safetensors.torch import save_file
from text_files import (
    TINY_19B,
    reference_processor,
    tiny_gemma3,
    train_spm,
    write_comfy_file,
    write_ltx2_checkpoint,
)

LATENT_CHANNELS = RELEASED_TINY_VAE["latent_channels"]  # 8
# ComfyUI's text projection file has no config: the connector is read with LTX-2's head width, 128, so the tiny
# Gemma is 128 wide (one connector head)
GEMMA_DIM, GEMMA_LAYERS = 128, 3
CONNECTOR = {**TINY_19B, "connector_num_attention_heads": 1, "connector_attention_head_dim": GEMMA_DIM}
TRANSFORMER = {**TINY_TRANSFORMER, "in_channels": LATENT_CHANNELS, "out_channels": LATENT_CHANNELS,
               "caption_channels": GEMMA_DIM, **CONNECTOR}
CONFIG = {"transformer": TRANSFORMER, "vae": RELEASED_TINY_VAE, "audio_vae": {}}
# The clip the model tests sample: its latent grid, as the files' VAE compresses it, and one prompt.
CLIP = {"frames": 9, "height": 64, "width": 64}  # latent 2 x 2 x 2
SHAPE = (1, LATENT_CHANNELS, 2, 2, 2)
FPS = 24.0
PROMPT = "a red ball rolls to the left"
UPSCALER = {"_class_name": "LatentUpsampler", "in_channels": LATENT_CHANNELS, "mid_channels": 32,
            "num_blocks_per_stage": 1, "dims": 3, "spatial_upsample": True, "temporal_upsample": False,
            "spatial_scale": 2.0, "rational_resampler": False}


@dataclass
class Layouts:
    single: dict[str, str]  # load_model keywords: path, text_encoder, upscaler
    split: dict[str, str]  # path, text_encoder, vae, text_projection, upscaler


def write_model(folder: Path, seed: int = 0) -> Layouts:
    folder.mkdir(parents=True, exist_ok=True)
    transformer = reference_transformer(CONFIG, seed).state_dict()
    vae = ReferenceVAE(RELEASED_TINY_VAE, seed=seed + 1)
    processor = reference_processor(TRANSFORMER, GEMMA_DIM, GEMMA_LAYERS + 1, seed=seed + 2)
    gemma = folder / "gemma_3_12B_it.safetensors"
    write_comfy_file(gemma, tiny_gemma3(seed + 3, hidden_size=GEMMA_DIM), train_spm(), form="fp32")
    upscaler = folder / "ltx-2-spatial-upscaler-x2-1.0.safetensors"
    write_upscaler(upscaler, UPSCALER, seed + 4)

    # the connector's tensors as the released checkpoint holds them, then everything else beside them
    connector = folder / "connector.safetensors"
    write_ltx2_checkpoint(connector, processor, TRANSFORMER)
    with safe_open(str(connector), framework="pt", device="cpu") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.endswith("adaln_single.linear.weight")}  # noqa: SIM118
    connector.unlink()
    root = RELEASED_PREFIXES["transformer"]
    tensors.update({root + k: v.contiguous() for k, v in transformer.items()})
    tensors.update(vae.released_tensors("vae."))
    checkpoint = folder / "ltx-2-19b-dev.safetensors"
    save_file(tensors, str(checkpoint), metadata={"config": json.dumps(CONFIG)})

    split = folder / "split"
    split.mkdir(exist_ok=True)
    diffusion = split / "ltx-2-19b-dev_transformer_only.safetensors"
    save_file({k: v.contiguous() for k, v in transformer.items()}, str(diffusion),
              metadata={"config": json.dumps({"transformer": TRANSFORMER})})
    vae_file = split / "ltx-2-19b-dev_video_vae.safetensors"
    save_file(vae.released_tensors(""), str(vae_file), metadata={"config": json.dumps({"vae": RELEASED_TINY_VAE})})
    projection = split / "ltx-2-19b-text_projection.safetensors"
    write_ltx2_checkpoint(projection, processor, TRANSFORMER, layout="comfy")
    return Layouts(
        single={"path": str(checkpoint), "text_encoder": str(gemma), "upscaler": str(upscaler)},
        split={"path": str(diffusion), "text_encoder": str(gemma), "vae": str(vae_file),
               "text_projection": str(projection), "upscaler": str(upscaler)},
    )
