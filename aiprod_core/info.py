"""What a model is made of, without allocating it: parameter counts, block counts, latent size."""

from __future__ import annotations

import os

import torch

from .checkpoint import read_checkpoint_config
from .config import ModelConfig, preset
from .families.ltx2.describe import describe_ltx2
from .families.ltx2.model import LTX2ModelConfig
from .model import default_model_path, read_model_config
from .models.backbone import HybridBackbone
from .models.upscaler import LatentUpscaler
from .models.vae import CausalVideoVAE
from .text.size import text_encoder_param_count


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_config(model: str | os.PathLike | None = None, preset_name: str | None = None,
                 **files) -> ModelConfig | LTX2ModelConfig:
    """The config of a checkpoint (of either family: `files` as model.read_model_config takes them), a preset, or
    the embedded default model."""
    return _config_and_source(model, preset_name, **files)[0]


def _config_and_source(model, preset_name, need_text_encoder: bool = False, names: dict[str, str] | None = None,
                       **files) -> tuple[ModelConfig | LTX2ModelConfig, str]:
    if model is not None:
        return read_model_config(model, need_text_encoder=need_text_encoder, names=names, **files), str(model)
    given = sorted(k for k, v in files.items() if v is not None)
    if given:
        flag = (names or {}).get(given[0], f"{given[0]}=")
        raise ValueError(f"{flag} is for an LTX-2 model's files; give the LTX-2 checkpoint as the model too")
    path = default_model_path() if preset_name is None else None
    config = read_checkpoint_config(path) if path else preset(preset_name or "tiny")
    return config, str(path) if path else f"preset {preset_name or 'tiny'}"


def model_info(
    model: str | os.PathLike | None = None,
    preset_name: str | None = None,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    **files,
) -> dict:
    """A JSON-able summary of a checkpoint's or a preset's components and of one clip size (an LTX-2 model's:
    families.ltx2.describe, read from its files' headers; `files` as model.read_model_config takes them)."""
    config, source = _config_and_source(model, preset_name, **files)
    if isinstance(config, LTX2ModelConfig):
        return describe_ltx2(config, frames, height, width)
    return summarize(config, source, frames, height, width)


def summarize(config: ModelConfig, source: str, frames: int | None, height: int | None, width: int | None) -> dict:
    """An AIPROD model's summary: its components built on the meta device and counted."""
    frames, height, width = frames or config.frames, height or config.height, width or config.width
    latent = config.vae.latent_shape(frames, height, width)
    with torch.device("meta"):  # shapes only: the base preset would need GBs
        backbone = HybridBackbone(config.backbone)
        vae = CausalVideoVAE(config.vae)
        upscaler = LatentUpscaler(config.upscaler) if config.upscaler else None
    b = config.backbone
    components = {
        "backbone": {
            "params": _params(backbone),
            "attention_blocks": b.attention_blocks,
            "conv_blocks": b.conv_blocks,
            "width": b.width,
            "heads": b.heads,
            "pattern": b.pattern,
        },
        "vae": {
            "params": _params(vae),
            "spatial_compression": config.vae.spatial_compression,
            "temporal_compression": config.vae.temporal_compression,
            "latent_channels": config.vae.latent_channels,
        },
        "text_encoder": {"params": text_encoder_param_count(config.text), "kind": config.text.kind, "dim": config.text.dim},
    }
    if upscaler is not None:
        components["upscaler"] = {"params": _params(upscaler), "mid_channels": config.upscaler.mid_channels}
    return {
        "name": config.name,
        "source": source,
        "components": components,
        "total_params": sum(c["params"] for c in components.values()),
        "clip": {
            "frames": frames,
            "height": height,
            "width": width,
            "latent_shape": list(latent),
            "tokens": latent[1] * latent[2] * latent[3],
        },
    }
