"""The LTX-2 video VAE's config, read from the `"vae"` section of the JSON that Lightricks' files carry in the
safetensors metadata key `config`, with the defaults of `ltx_core`'s video VAE configurators.

Blocks are `[name, params]` pairs; params is a dict or, in older files, the number of layers. The decoder's
list is written in encoder order (the decoder builds it reversed), so `decoder_blocks[-1]` runs first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...config import ConfigError

# What each block does to (time, height, width) and where it may appear.
ENCODER_BLOCKS: dict[str, tuple[int, int, int]] = {
    "res_x": (1, 1, 1),
    "res_x_y": (1, 1, 1),
    "compress_time": (2, 1, 1),
    "compress_space": (1, 2, 2),
    "compress_all": (2, 2, 2),
    "compress_all_x_y": (2, 2, 2),
    "compress_time_res": (2, 1, 1),
    "compress_space_res": (1, 2, 2),
    "compress_all_res": (2, 2, 2),
}
DECODER_BLOCKS: dict[str, tuple[int, int, int]] = {
    "res_x": (1, 1, 1),
    "res_x_y": (1, 1, 1),
    "compress_time": (2, 1, 1),
    "compress_space": (1, 2, 2),
    "compress_all": (2, 2, 2),
}
NORM_LAYERS = ("pixel_norm", "group_norm")
LOG_VARIANCES = ("uniform", "per_channel", "constant")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

Block = tuple[str, dict[str, Any]]


def _blocks(raw: Any, where: str, known: dict[str, tuple[int, int, int]]) -> tuple[Block, ...]:
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"vae.{where} is {raw!r}; expected a list of [name, params] pairs")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, list | tuple) or len(item) != 2 or not isinstance(item[0], str):
            raise ConfigError(f"vae.{where}[{i}] is {item!r}; expected [name, params], e.g. [\"res_x\", {{\"num_layers\": 2}}]")
        name, params = item
        if name not in known:
            hint = " (the reference cannot build it either)" if name == "attn_res_x" else ""
            raise ConfigError(f"vae.{where}[{i}] is block {name!r}{hint}; supported blocks are {sorted(known)}")
        params = {"num_layers": params} if isinstance(params, int) else dict(params)
        out.append((name, params))
    return tuple(out)


def _choice(cfg: dict[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    v = cfg.get(key, default)
    if v not in allowed:
        raise ConfigError(f"vae.{key} is {v!r}; expected one of {list(allowed)}")
    return v


@dataclass(frozen=True)
class LTX2VAEConfig:
    """The video VAE's structure. Field defaults are those `ltx_core` uses when a key is absent."""

    encoder_blocks: tuple[Block, ...] = ()
    decoder_blocks: tuple[Block, ...] = ()
    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 128
    patch_size: int = 4
    norm_layer: str = "pixel_norm"
    latent_log_var: str = "uniform"
    encoder_padding: str = "zeros"
    decoder_padding: str = "reflect"
    causal_decoder: bool = False
    timestep_conditioning: bool = True  # ltx_core's default; released LTX-2 files say false
    decoder_base_channels: int = 128
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # keys read but not used (scaling_factor...)

    @classmethod
    def from_dict(cls, vae: dict[str, Any]) -> LTX2VAEConfig:
        """From the `"vae"` section of the metadata JSON."""
        if not isinstance(vae, dict):
            raise ConfigError(f"the 'vae' config is {type(vae).__name__}; expected a JSON object")
        dims = vae.get("dims", 3)
        if dims != 3:
            raise ConfigError(f"vae.dims is {dims!r}; only 3-D video VAEs (dims 3) are supported")
        # One key sets both halves; without it the encoder pads with zeros and the decoder reflects.
        pad = vae.get("spatial_padding_mode")
        if pad is not None and pad not in PADDING_MODES:
            raise ConfigError(f"vae.spatial_padding_mode is {pad!r}; expected one of {list(PADDING_MODES)}")
        cfg = cls(
            encoder_blocks=_blocks(vae.get("encoder_blocks", []), "encoder_blocks", ENCODER_BLOCKS),
            decoder_blocks=_blocks(vae.get("decoder_blocks", []), "decoder_blocks", DECODER_BLOCKS),
            in_channels=int(vae.get("in_channels", 3)),
            out_channels=int(vae.get("out_channels", 3)),
            latent_channels=int(vae.get("latent_channels", 128)),
            patch_size=int(vae.get("patch_size", 4)),
            norm_layer=_choice(vae, "norm_layer", "pixel_norm", NORM_LAYERS),
            latent_log_var=_choice(vae, "latent_log_var", "uniform", LOG_VARIANCES),
            encoder_padding=pad or "zeros",
            decoder_padding=pad or "reflect",
            causal_decoder=bool(vae.get("causal_decoder", False)),
            timestep_conditioning=bool(vae.get("timestep_conditioning", True)),
            decoder_base_channels=int(vae.get("decoder_base_channels", 128)),
            extra={k: v for k, v in vae.items() if k not in _READ},
        )
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The `"vae"` section in Lightricks' vocabulary (round-trips through `from_dict`)."""
        return {
            **self.extra,
            "dims": 3,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "latent_channels": self.latent_channels,
            "encoder_blocks": [[n, p] for n, p in self.encoder_blocks],
            "decoder_blocks": [[n, p] for n, p in self.decoder_blocks],
            "patch_size": self.patch_size,
            "norm_layer": self.norm_layer,
            "latent_log_var": self.latent_log_var,
            "causal_decoder": self.causal_decoder,
            "timestep_conditioning": self.timestep_conditioning,
            "decoder_base_channels": self.decoder_base_channels,
            **({"spatial_padding_mode": self.encoder_padding}
               if self.encoder_padding == self.decoder_padding else {}),
        }

    def validate(self) -> None:
        for name in ("in_channels", "out_channels", "latent_channels", "patch_size", "decoder_base_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"vae.{name} is {getattr(self, name)}; expected a positive integer")
        for where, blocks in (("encoder_blocks", self.encoder_blocks), ("decoder_blocks", self.decoder_blocks)):
            for i, (name, p) in enumerate(blocks):
                if name == "res_x" and int(p.get("num_layers", 0)) < 1:
                    raise ConfigError(f"vae.{where}[{i}] ({name}) needs num_layers >= 1, found {p}")
        enc, dec = self.encoder_factors, self.decoder_factors
        if self.encoder_blocks and self.decoder_blocks and enc != dec:
            raise ConfigError(
                f"the encoder compresses (time, space) by {enc} but the decoder expands by {dec}; "
                "the two block lists must mirror each other"
            )

    @staticmethod
    def _factors(blocks: tuple[Block, ...], table: dict[str, tuple[int, int, int]], patch: int) -> tuple[int, int]:
        t = math.prod(table[n][0] for n, _ in blocks)
        s = math.prod(table[n][1] for n, _ in blocks) * patch
        return t, s

    @property
    def encoder_factors(self) -> tuple[int, int]:
        """(temporal, spatial) compression of the encoder."""
        return self._factors(self.encoder_blocks, ENCODER_BLOCKS, self.patch_size)

    @property
    def decoder_factors(self) -> tuple[int, int]:
        """(temporal, spatial) expansion of the decoder."""
        return self._factors(self.decoder_blocks, DECODER_BLOCKS, self.patch_size)

    @property
    def temporal_compression(self) -> int:
        return (self.decoder_factors if self.decoder_blocks else self.encoder_factors)[0]

    @property
    def spatial_compression(self) -> int:
        return (self.decoder_factors if self.decoder_blocks else self.encoder_factors)[1]


_READ = {
    "dims", "spatial_padding_mode", "encoder_blocks", "decoder_blocks", "in_channels", "out_channels",
    "latent_channels", "patch_size", "norm_layer", "latent_log_var", "causal_decoder", "timestep_conditioning",
    "decoder_base_channels",
}

# The video VAE of LTX-2 (19B) as released: 32x space, 8x time, 128 channels, a non-causal decoder without
# timestep conditioning. Used for a split VAE file that carries no config in its metadata.
LTX2_VIDEO_VAE = {
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "encoder_blocks": [
        ["res_x", {"num_layers": 4}],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
    ],
    "decoder_blocks": [
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
    ],
    "scaling_factor": 1.0,
    "norm_layer": "pixel_norm",
    "patch_size": 4,
    "latent_log_var": "uniform",
    "use_quant_conv": False,
    "causal_decoder": False,
    "timestep_conditioning": False,
    "normalize_latent_channels": False,
}
