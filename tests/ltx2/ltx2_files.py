"""Tiny LTX-2 files in the released layout, written from Lightricks' reference modules (ltx-core), for the LTX-2
equivalence tests: the transformer (single file, split, fp8), the video VAE (`ReferenceVAE`, at `RELEASED_TINY_VAE`,
the released structure scaled down) and the spatial upscaler (`write_upscaler`).

A released single file keeps each component under a prefix (`RELEASED_PREFIXES`) and the whole model config as
JSON in the metadata key `config`, with one section per component (`transformer`, `vae`, ...). fp8 files store
the transformer blocks' linear weights as float8_e4m3fn, in one of the formats in `FP8_FORMATS`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from aiprod_core.families.ltx2.vae_config import LTX2_VIDEO_VAE

# Component -> the prefix its keys carry in Lightricks' single files.
RELEASED_PREFIXES: dict[str, str] = {
    "transformer": "model.diffusion_model.",
}


def rel_err(ours: Tensor, ref: Tensor) -> float:
    """The error measure of every LTX-2 equivalence test: the largest absolute difference over the reference's
    largest value, computed in float32."""
    assert ours.shape == ref.shape, (tuple(ours.shape), tuple(ref.shape))
    return ((ours.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


# "scaled": Lightricks' and ComfyUI's current format, `<layer>.weight_scale` (+ `.input_scale`) per weight;
# "comfy_legacy": ComfyUI's older scaled fp8, `<layer>.scale_weight` and a `scaled_fp8` marker;
# "cast": weights and biases cast to fp8 with no scale (ltx-core's fp8_cast policy).
FP8_FORMATS = ("scaled", "comfy_legacy", "cast")

# A tiny LTX-2 19B-style transformer section (audio stream included: the reference builds it).
TINY_TRANSFORMER: dict = {
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "in_channels": 128,
    "out_channels": 128,
    "cross_attention_dim": 16,
    "caption_channels": 24,
    "norm_eps": 1e-6,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 4,
    "audio_in_channels": 8,
    "audio_out_channels": 8,
    "audio_cross_attention_dim": 8,
    "positional_embedding_theta": 10000.0,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "audio_positional_embedding_max_pos": [20],
    "timestep_scale_multiplier": 1000,
    "av_ca_timestep_scale_multiplier": 1,
    "rope_type": "split",
    "frequencies_precision": "float64",
    "use_middle_indices_grid": True,
    # the values the reference configurator checks
    "dropout": 0.0,
    "attention_bias": True,
    "num_vector_embeds": None,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
}


def random_state(shapes: dict[str, torch.Size], seed: int) -> dict[str, Tensor]:
    """Seeded random float32 weights for a module's state-dict shapes, at scales that keep activations O(1):
    Linear weights N(0, 1/fan_in), norm gains near 1, tables and biases N(0, 0.2^2)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in sorted(shapes.items()):
        t = torch.randn(shape, generator=g)
        if name.endswith("norm.weight") or name.endswith("_norm.weight"):
            t = 1 + 0.1 * t
        elif name.endswith(".weight") and len(shape) == 2:
            t = t / shape[1] ** 0.5
        else:
            t = 0.2 * t
        out[name] = t
    return out


def reference_transformer(config: dict, seed: int = 0) -> torch.nn.Module:
    """Lightricks' audio-video LTXModel for a full config ({"transformer": {...}}), with seeded random weights."""
    from ltx_core.model.transformer import LTXModelConfigurator

    model = LTXModelConfigurator.from_config(config)
    state = random_state({k: v.shape for k, v in model.state_dict().items()}, seed)
    model.load_state_dict(state, assign=True)
    return model.eval()


def _quantizable(key: str, value: Tensor) -> bool:
    return key.startswith("transformer_blocks.") and key.endswith(".weight") and value.ndim == 2


def fp8_transformer(state: dict[str, Tensor], fmt: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(tensors as an fp8 file stores them, the float32 weights they stand for) for a transformer state dict."""
    if fmt not in FP8_FORMATS:
        raise ValueError(f"fp8 format {fmt!r} is not one of {FP8_FORMATS}")
    stored, dequantized = {}, {}
    fp8 = torch.float8_e4m3fn
    for k, v in state.items():
        quantize = _quantizable(k, v) or (fmt == "cast" and k.startswith("transformer_blocks.")
                                          and k.endswith(".bias"))
        if not quantize:
            stored[k], dequantized[k] = v, v
            continue
        if fmt == "cast":
            q = v.to(fp8)
            stored[k], dequantized[k] = q, q.float()
            continue
        scale = v.abs().max().float() / torch.finfo(fp8).max
        q = (v.float() / scale).to(fp8)
        base = k[: -len(".weight")]
        stored[k], dequantized[k] = q, q.float() * scale
        if fmt == "scaled":
            stored[base + ".weight_scale"] = scale.reshape(())
            stored[base + ".input_scale"] = torch.tensor(1.0)
        else:
            stored[base + ".scale_weight"] = scale.reshape(())
    if fmt == "comfy_legacy":
        stored["scaled_fp8"] = torch.empty(0, dtype=fp8)
    return stored, dequantized


def write_single_file(
    path: str | Path,
    config: dict,
    components: dict[str, dict[str, Tensor]],
    dtype: torch.dtype | None = None,
    prefixed: bool = True,
) -> Path:
    """Write components' state dicts (keys as the reference modules name them) in the released single-file
    layout: each under its RELEASED_PREFIXES prefix (or none, with `prefixed` False, as a split file), the config
    as JSON under metadata `config`. `dtype` casts floating tensors that are not fp8."""
    tensors = {}
    for name, state in components.items():
        prefix = RELEASED_PREFIXES[name] if prefixed else ""
        for k, v in state.items():
            if dtype is not None and v.is_floating_point() and v.dtype not in (torch.float8_e4m3fn,):
                v = v.to(dtype)
            tensors[prefix + k] = v.detach().contiguous()
    path = Path(path)
    save_file(tensors, str(path), metadata={"config": json.dumps(config)})
    return path


def _one_layer(blocks: list) -> list:
    return [[kind, {**params, "num_layers": 1} if "num_layers" in params else params] for kind, params in blocks]


# The released video VAE scaled down: the same block types and the same 32x space / 8x time compression, 8 latent
# channels, one res block per level, decoder widths 32 -> 16 -> 8 -> 4.
RELEASED_TINY_VAE: dict = {**LTX2_VIDEO_VAE, "latent_channels": 8, "decoder_base_channels": 4,
                           "encoder_blocks": _one_layer(LTX2_VIDEO_VAE["encoder_blocks"]),
                           "decoder_blocks": _one_layer(LTX2_VIDEO_VAE["decoder_blocks"])}


def seed_weights(module: torch.nn.Module, seed: int) -> None:
    """Seeded weights at a scale that keeps activations O(1) (ltx_core leaves some tables uninitialised)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else 1
            scale = 1 / math.sqrt(fan_in) if p.ndim > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * scale)
            if p.ndim == 0:  # timestep_scale_multiplier
                p.fill_(1000.0)


class ReferenceVAE:
    """ltx_core's video encoder and decoder for one VAE config, with seeded weights and shared statistics."""

    def __init__(self, vae_cfg: dict, seed: int = 0):
        from ltx_core.model.video_vae.model_configurator import (
            VideoDecoderConfigurator,
            VideoEncoderConfigurator,
        )

        cfg = {"vae": vae_cfg}
        self.encoder = VideoEncoderConfigurator.from_config(cfg).eval()
        self.decoder = VideoDecoderConfigurator.from_config(cfg).eval()
        seed_weights(self.encoder, seed)
        seed_weights(self.decoder, seed + 1)
        g = torch.Generator().manual_seed(seed + 2)
        c = vae_cfg["latent_channels"]
        self.stats = {"mean-of-means": torch.randn(c, generator=g) * 0.5,
                      "std-of-means": torch.rand(c, generator=g) + 0.5}
        for half in (self.encoder, self.decoder):
            for k, v in self.stats.items():
                half.per_channel_statistics.get_buffer(k).copy_(v)

    def released_tensors(self, prefix: str = "vae.") -> dict[str, Tensor]:
        """The VAE's tensors under the release's names, spare statistics included."""
        out = {}
        for name, half in (("encoder", self.encoder), ("decoder", self.decoder)):
            for k, v in half.state_dict().items():
                if not k.startswith("per_channel_statistics."):
                    out[f"{prefix}{name}.{k}"] = v.clone()
        c = len(self.stats["mean-of-means"])
        spare = {"channel": torch.arange(c, dtype=torch.float32), "mean-of-stds": torch.ones(c),
                 "mean-of-stds_over_std-of-means": torch.ones(c)}
        for k, v in {**self.stats, **spare}.items():
            out[f"{prefix}per_channel_statistics.{k}"] = v.clone()
        return out


def write_upscaler(path: str | Path, config: dict, seed: int = 0) -> torch.nn.Module:
    """ltx_core's latent upsampler with every weight random (GroupNorm's too), saved as the release is: unprefixed
    keys, the config as JSON under metadata `config`. Returns the reference module."""
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator

    torch.manual_seed(seed)
    ref = LatentUpsamplerConfigurator.from_config(config)
    with torch.no_grad():  # convolutions start random; GroupNorm's affine starts at 1 and 0, so move it too
        for name, p in ref.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path), metadata={"config": json.dumps(config)})
    return ref.eval()
