"""Model configs: dataclasses, the presets of DESIGN.md, JSON round trip and validation.

A checkpoint carries its `ModelConfig` as JSON in the safetensors metadata, so a model is always
rebuilt from its config and never guessed from tensor shapes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A config value or a requested clip size that the model cannot take."""


@dataclass
class VAEConfig:
    """Causal video VAE. Space is patchified first, then each `down` stage halves (t,h,w), (h,w) or (t)."""

    in_channels: int = 3
    latent_channels: int = 16
    patch_size: int = 2
    channels: tuple[int, ...] = (32, 64, 128)  # width at each level; len(down) + 1 entries
    down: tuple[str, ...] = ("all", "all")  # "all" | "space" | "time"
    layers_per_level: int = 1
    mid_attention: bool = True  # causal temporal attention at the lowest level

    @property
    def spatial_compression(self) -> int:
        return self.patch_size * 2 ** sum(d in ("all", "space") for d in self.down)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(d in ("all", "time") for d in self.down)

    def validate(self) -> None:
        if len(self.channels) != len(self.down) + 1:
            raise ConfigError(
                f"vae.channels has {len(self.channels)} entries but vae.down has {len(self.down)}; "
                f"channels needs one entry per level, i.e. len(down) + 1 = {len(self.down) + 1}"
            )
        bad = [d for d in self.down if d not in ("all", "space", "time")]
        if bad:
            raise ConfigError(f"vae.down has {bad}; each stage must be 'all', 'space' or 'time'")
        _positive(self, "in_channels", "latent_channels", "patch_size", "layers_per_level")

    def check_clip(self, frames: int, height: int, width: int) -> None:
        """Raise a ConfigError that says which size to use when the VAE cannot take this clip."""
        tc, sc = self.temporal_compression, self.spatial_compression
        if frames < 1 or (frames - 1) % tc:
            lo = max(1, 1 + (frames - 1) // tc * tc)
            hi = lo + tc
            raise ConfigError(f"frames={frames} is not 1 + {tc}k for this VAE; use {hi} or {lo}")
        for name, v in (("height", height), ("width", width)):
            if v < sc or v % sc:
                lo = max(sc, v // sc * sc)
                raise ConfigError(
                    f"{name}={v} is not a multiple of {sc} for this VAE; use {lo} or {lo + sc}"
                )

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, t, h, w) of the latent for a clip of this size."""
        self.check_clip(frames, height, width)
        tc, sc = self.temporal_compression, self.spatial_compression
        return (self.latent_channels, 1 + (frames - 1) // tc, height // sc, width // sc)


@dataclass
class BackboneConfig:
    """Hybrid backbone: `pattern` lists the blocks, A = attention block, C = 3D-conv block."""

    in_channels: int = 16
    width: int = 128
    heads: int = 4
    pattern: str = "ACACAC"
    mlp_ratio: float = 4.0  # hidden width of the gated MLP / width
    text_dim: int = 128  # width of the text encoder's hidden states
    conv_kernel: int = 3
    rope_theta: float = 10000.0
    # RoPE positions are latent indices divided by these. LTX's (20, 2048, 2048) is in pixels of a 32x VAE,
    # i.e. 64 latent steps per unit in space: the same fraction per latent step as (20, 64, 64) here.
    rope_max_pos: tuple[int, int, int] = (20, 64, 64)
    pooled_text: bool = True  # masked-mean text embedding added to the AdaLN timestep embedding
    # frequencies per axis of the absolute-position features added to the tokens (0: none, as in LTX). RoPE and
    # convolutions see only relative positions, so a model without them cannot put "the object starts on the
    # right" into its high-noise prediction, which is where a caption's direction of motion has to act
    absolute_positions: int = 0

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def mlp_dim(self) -> int:
        return round(self.width * self.mlp_ratio / 32) * 32

    @property
    def attention_blocks(self) -> int:
        return self.pattern.count("A")

    @property
    def conv_blocks(self) -> int:
        return self.pattern.count("C")

    def validate(self) -> None:
        _positive(self, "in_channels", "width", "heads", "text_dim", "conv_kernel")
        if not self.pattern or set(self.pattern) - {"A", "C"}:
            raise ConfigError(
                f"backbone.pattern={self.pattern!r} must be a non-empty string of 'A' (attention) "
                "and 'C' (conv) blocks, e.g. 'ACACAC'"
            )
        if "A" not in self.pattern:
            raise ConfigError("backbone.pattern has no 'A' block; text enters through attention blocks")
        if self.width % self.heads:
            raise ConfigError(f"backbone.width={self.width} is not divisible by heads={self.heads}")
        if self.head_dim % 2 or self.head_dim < 6:
            raise ConfigError(
                f"backbone head_dim={self.head_dim} (width/heads) must be even and >= 6 for 3D RoPE"
            )
        if self.conv_kernel % 2 == 0:
            raise ConfigError(f"backbone.conv_kernel={self.conv_kernel} must be odd, e.g. 3")


@dataclass
class TextEncoderConfig:
    """Text encoder. `byte`: ByT5 tokenizer + a small T5 encoder stored in our checkpoint.
    `t5`: a T5/mT5/umT5 Hugging Face folder at `path`. `umt5_comfy`: ComfyUI's single-file umT5."""

    kind: str = "byte"
    dim: int = 128  # hidden width of the output states
    layers: int = 2
    heads: int = 4
    ff_dim: int = 256
    max_length: int = 128  # tokens (bytes for `byte`)
    path: str = ""  # external weights for `t5` / `umt5_comfy`

    def validate(self) -> None:
        if self.kind not in ("byte", "t5", "umt5_comfy"):
            raise ConfigError(f"text.kind={self.kind!r}; expected 'byte', 't5' or 'umt5_comfy'")
        _positive(self, "dim", "layers", "heads", "ff_dim", "max_length")


@dataclass
class UpscalerConfig:
    """2x spatial latent upsampler in LTX's layout."""

    latent_channels: int = 16
    mid_channels: int = 64
    blocks_per_stage: int = 2

    def validate(self) -> None:
        _positive(self, "latent_channels", "mid_channels", "blocks_per_stage")
        if self.mid_channels % 8:
            raise ConfigError(f"upscaler.mid_channels={self.mid_channels} must be a multiple of 8 (GroupNorm)")


@dataclass
class ModelConfig:
    name: str = "aiprod-v2-tiny"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    upscaler: UpscalerConfig | None = field(default_factory=UpscalerConfig)
    # default clip
    frames: int = 17
    height: int = 64
    width: int = 64
    fps: int = 8

    def validate(self) -> ModelConfig:
        self.backbone.validate()
        self.vae.validate()
        self.text.validate()
        if self.upscaler is not None:
            self.upscaler.validate()
        if self.backbone.in_channels != self.vae.latent_channels:
            raise ConfigError(
                f"backbone.in_channels={self.backbone.in_channels} differs from "
                f"vae.latent_channels={self.vae.latent_channels}; they must be equal"
            )
        if self.backbone.text_dim != self.text.dim:
            raise ConfigError(
                f"backbone.text_dim={self.backbone.text_dim} differs from text.dim={self.text.dim}; "
                "the caption projection takes the encoder's width"
            )
        if self.upscaler is not None and self.upscaler.latent_channels != self.vae.latent_channels:
            raise ConfigError(
                f"upscaler.latent_channels={self.upscaler.latent_channels} differs from "
                f"vae.latent_channels={self.vae.latent_channels}"
            )
        self.vae.check_clip(self.frames, self.height, self.width)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, d, "config").validate()

    @classmethod
    def from_json(cls, s: str) -> ModelConfig:
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise ConfigError(f"model config is not valid JSON ({e}); expected a JSON object") from e
        if not isinstance(d, dict):
            raise ConfigError(f"model config JSON is a {type(d).__name__}; expected an object")
        return cls.from_dict(d)


def _positive(obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{type(obj).__name__}.{n}={v!r} must be a positive integer")


def _from_dict(cls: type, d: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in {where}; known keys: {sorted(known)}")
    sub = {"backbone": BackboneConfig, "vae": VAEConfig, "text": TextEncoderConfig, "upscaler": UpscalerConfig}
    kwargs = {}
    for k, v in d.items():
        if k in sub and cls is ModelConfig:
            kwargs[k] = None if v is None else _from_dict(sub[k], v, f"{where}.{k}")
        elif isinstance(v, list):
            kwargs[k] = tuple(v)
        else:
            kwargs[k] = v
    return cls(**kwargs)


def _tiny() -> ModelConfig:
    return ModelConfig(backbone=BackboneConfig(absolute_positions=4))


def _small() -> ModelConfig:
    return ModelConfig(
        name="aiprod-v2-small",
        backbone=BackboneConfig(
            in_channels=128, width=512, heads=8, pattern="CAA" * 4, mlp_ratio=8 / 3, text_dim=512
        ),
        vae=VAEConfig(
            latent_channels=128,
            patch_size=4,
            channels=(64, 128, 256, 256, 256),
            down=("space", "time", "all", "all"),
        ),
        text=TextEncoderConfig(kind="byte", dim=512, layers=4, heads=8, ff_dim=1024, max_length=256),
        upscaler=UpscalerConfig(latent_channels=128, mid_channels=256, blocks_per_stage=2),
        frames=33,
        height=256,
        width=256,
        fps=16,
    )


def _base() -> ModelConfig:
    # 48 blocks, 30 attention + 18 conv: "AACAACAC" six times.
    return ModelConfig(
        name="aiprod-v2-base",
        backbone=BackboneConfig(
            in_channels=128, width=1536, heads=24, pattern="AACAACAC" * 6, mlp_ratio=8 / 3, text_dim=4096
        ),
        vae=VAEConfig(
            latent_channels=128,
            patch_size=4,
            channels=(128, 256, 512, 512, 512),
            down=("space", "time", "all", "all"),
            layers_per_level=2,
        ),
        text=TextEncoderConfig(kind="umt5_comfy", dim=4096, layers=24, heads=64, ff_dim=10240, max_length=512),
        upscaler=UpscalerConfig(latent_channels=128, mid_channels=512, blocks_per_stage=4),
        frames=121,
        height=512,
        width=768,
        fps=24,
    )


PRESETS = {"tiny": _tiny, "small": _small, "base": _base}


def preset(name: str) -> ModelConfig:
    """A fresh, validated config for a preset name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]().validate()
