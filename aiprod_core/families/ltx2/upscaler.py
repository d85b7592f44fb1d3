"""LTX-2's spatial latent upsampler (`ltx-2-spatial-upscaler-x2-1.0.safetensors`), in the layout of its file.

initial conv + GroupNorm + SiLU -> ResBlocks -> per-frame Conv2d + PixelShuffle -> ResBlocks -> final conv,
all 3x3(x3) with zero padding and GroupNorm(32) over a group's channels, frames and pixels.

The per-frame step comes in two forms, told apart by the file's config:
- plain (`rational_resampler: false`): `upsampler.0` = Conv2d(mid -> 4 mid) then PixelShuffle(2);
- rational (`rational_resampler: true`; public ports read the x2 1.0 release in this form, with mid_channels 1024
  and 4 blocks per stage): `upsampler.conv` = Conv2d(mid -> p^2 mid),
  PixelShuffle(p), then a fixed 5x5 binomial blur with stride q (`upsampler.blur_down.kernel`), for a scale p/q
  (2 = 2/1, where the stride-1 blur is skipped, 1.5 = 3/2, 0.75 = 3/4, 4 = 4/1).

The upsampler works on raw latents: `upsample_normalized` undoes the VAE's per-channel statistics around it.
Shapes: z [B,C,t,h,w] -> [B,C,t,s*h,s*w].
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from ...checkpoint import CheckpointError, check_keys, check_safetensors
from .files import config_object

GROUPS = 32  # GroupNorm groups everywhere in LTX's upsampler
BLUR_TAPS = 5  # binomial row [1, 4, 6, 4, 1]
RATIONAL_SCALES = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}  # scale -> (PixelShuffle p, stride q)
RELEASED_FILE = "ltx-2-spatial-upscaler-x2-1.0.safetensors"


@dataclass(frozen=True)
class LTX2UpsamplerConfig:
    """The JSON a released upsampler keeps under the safetensors metadata key `config` (Lightricks' names).

    The defaults are the x2 1.0 release as public ports read it: 128 channels, mid 1024, 4 blocks per stage,
    spatial x2 through the rational resampler. A file's own config always decides.
    """

    in_channels: int = 128
    mid_channels: int = 1024
    num_blocks_per_stage: int = 4
    dims: int = 3
    spatial_upsample: bool = True
    temporal_upsample: bool = False
    spatial_scale: float = 2.0
    rational_resampler: bool = True

    @classmethod
    def from_json(cls, text: str, where: str = "config") -> LTX2UpsamplerConfig:
        raw = config_object(text, where)
        if raw.get("_class_name", "LatentUpsampler") != "LatentUpsampler":
            raise CheckpointError(
                f"{where}: its config names class {raw['_class_name']!r}; expected 'LatentUpsampler' "
                f"(a latent upscaler such as {RELEASED_FILE})"
            )
        known = {f.name for f in fields(cls)}
        # Lightricks' configurator fills absent keys with its defaults; ours are the same but for the released
        # form's mid_channels and resampler, so absent keys take the configurator's values.
        defaults = {"mid_channels": 512, "rational_resampler": False}
        values = {**defaults, **{k: v for k, v in raw.items() if k in known}}
        cfg = cls(**values)
        cfg.validate(where)
        return cfg

    def validate(self, where: str = "config") -> None:
        if self.dims != 3 or not self.spatial_upsample or self.temporal_upsample:
            raise CheckpointError(
                f"{where}: describes a latent upsampler with dims={self.dims}, spatial_upsample="
                f"{self.spatial_upsample}, temporal_upsample={self.temporal_upsample}; only the 3D spatial "
                f"upsampler is supported (dims=3, spatial only), e.g. {RELEASED_FILE}"
            )
        if self.in_channels < 1 or self.num_blocks_per_stage < 0:
            raise CheckpointError(
                f"{where}: in_channels={self.in_channels}, num_blocks_per_stage={self.num_blocks_per_stage}; "
                "expected at least 1 channel and 0 or more blocks"
            )
        if self.mid_channels < GROUPS or self.mid_channels % GROUPS:
            raise CheckpointError(
                f"{where}: mid_channels={self.mid_channels} is not a multiple of {GROUPS} (its GroupNorm groups)"
            )
        if self.rational_resampler and float(self.spatial_scale) not in RATIONAL_SCALES:
            raise CheckpointError(
                f"{where}: spatial_scale={self.spatial_scale} has no rational resampler; "
                f"expected one of {sorted(RATIONAL_SCALES)}"
            )
        if not self.rational_resampler and float(self.spatial_scale) != 2.0:
            raise CheckpointError(
                f"{where}: spatial_scale={self.spatial_scale} without the rational resampler; the plain "
                "PixelShuffle upsampler only doubles (spatial_scale 2.0)"
            )

    def to_json(self) -> str:
        return json.dumps({"_class_name": "LatentUpsampler", **{f.name: getattr(self, f.name) for f in fields(self)}})

    @property
    def ratio(self) -> tuple[int, int]:
        """(p, q): the latent grows by p with PixelShuffle, then shrinks by q with the blur's stride."""
        return RATIONAL_SCALES[float(self.spatial_scale)] if self.rational_resampler else (2, 1)


class UpsamplerResBlock(nn.Module):
    """conv-GN-SiLU-conv-GN, SiLU after the residual add. x [B,C,t,h,w] -> [B,C,t,h,w]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(GROUPS, channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(GROUPS, channels)

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return F.silu(x + h)


def binomial_kernel(taps: int = BLUR_TAPS) -> Tensor:
    """[1,1,taps,taps] outer product of a row of Pascal's triangle, summing to 1: a cheap Gaussian."""
    row = torch.tensor([math.comb(taps - 1, k) for k in range(taps)], dtype=torch.float64)
    k2d = row[:, None] * row[None, :]
    return (k2d / k2d.sum()).float()[None, None]


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling of each channel by `stride` with a fixed binomial blur. x [N,C,h,w] -> [N,C,h/s,w/s].

    The kernel is a buffer because the released file stores it (`upsampler.blur_down.kernel`).
    """

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride
        self.register_buffer("kernel", binomial_kernel())

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return x  # the x2 release: nothing to remove, so no blur either
        c, taps = x.shape[1], self.kernel.shape[-1]
        weight = self.kernel.to(x.dtype).expand(c, 1, taps, taps)  # depthwise
        return F.conv2d(x, weight, stride=self.stride, padding=taps // 2, groups=c)


class RationalResampler(nn.Module):
    """Scale a frame by p/q: Conv2d to p^2 times the channels, PixelShuffle(p), blur down by q. [N,C,h,w] in and out."""

    def __init__(self, channels: int, p: int, q: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, p * p * channels, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(p)
        self.blur_down = BlurDownsample(q)

    def forward(self, x: Tensor) -> Tensor:
        return self.blur_down(self.pixel_shuffle(self.conv(x)))


class LTX2LatentUpsampler(nn.Module):
    """LTX-2's latent upsampler: raw latent [B,C,t,h,w] -> [B,C,t,s*h,s*w] (s = spatial_scale, 2 for the release)."""

    def __init__(self, cfg: LTX2UpsamplerConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c, mid, n = cfg.in_channels, cfg.mid_channels, cfg.num_blocks_per_stage
        self.initial_conv = nn.Conv3d(c, mid, 3, padding=1)
        self.initial_norm = nn.GroupNorm(GROUPS, mid)
        self.res_blocks = nn.ModuleList(UpsamplerResBlock(mid) for _ in range(n))
        # Spatial only: frames are scaled one by one, time is left to the 3D blocks.
        if cfg.rational_resampler:
            self.upsampler = RationalResampler(mid, *cfg.ratio)
        else:
            self.upsampler = nn.Sequential(nn.Conv2d(mid, 4 * mid, 3, padding=1), nn.PixelShuffle(2))
        self.post_upsample_res_blocks = nn.ModuleList(UpsamplerResBlock(mid) for _ in range(n))
        self.final_conv = nn.Conv3d(mid, c, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        c = self.cfg.in_channels
        if not isinstance(z, Tensor) or z.ndim != 5 or z.shape[1] != c:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(
                f"LTX-2 upsampler input has shape {shape}; expected a raw latent [B,{c},t,h,w] "
                f"with {c} channels (the VAE's latent channels)"
            )
        x = F.silu(self.initial_norm(self.initial_conv(z.to(self.final_conv.weight.dtype))))
        for block in self.res_blocks:
            x = block(x)
        b, m, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, m, h, w)  # (B t) m h w: one frame at a time
        x = self.upsampler(x)
        x = x.reshape(b, t, m, *x.shape[-2:]).transpose(1, 2)  # B m t h' w'
        for block in self.post_upsample_res_blocks:
            x = block(x)
        return self.final_conv(x)


def upsample_normalized(upsampler: nn.Module, z: Tensor, mean_of_means: Tensor, std_of_means: Tensor) -> Tensor:
    """Normalised latent [B,C,t,h,w] -> normalised latent [B,C,t,s*h,s*w].

    The upsampler was trained on raw latents, so the VAE's per-channel statistics (its
    `per_channel_statistics.mean-of-means` and `std-of-means`, [C] each) are undone before and re-applied
    after, as Lightricks' `upsample_video` does.
    """
    c = z.shape[1]
    if mean_of_means.shape != (c,) or std_of_means.shape != (c,):
        raise ValueError(
            f"latent statistics have shapes {tuple(mean_of_means.shape)} and {tuple(std_of_means.shape)}; "
            f"expected [{c}] each, one value per latent channel (the VAE that made the latent)"
        )
    mean = mean_of_means.view(1, c, 1, 1, 1).to(z)
    std = std_of_means.view(1, c, 1, 1, 1).to(z)
    x = upsampler(z * std + mean)
    return (x.to(z.dtype) - mean) / std


def load_ltx2_upsampler(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> LTX2LatentUpsampler:
    """Build the upsampler from a released file: unprefixed keys, config JSON under the metadata key `config`.

    dtype None keeps the file's (bf16 for the release). Built on the meta device, so no memory goes to a random
    init that the file's weights would overwrite.
    """
    path = check_safetensors(path)
    where = str(path)
    try:
        with safe_open(where, framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            if "config" not in meta:
                raise CheckpointError(
                    f"{where}: no 'config' metadata (found {sorted(meta) or 'none'}); expected a Lightricks latent "
                    f"upsampler such as {RELEASED_FILE}, whose metadata holds its config as JSON"
                )
            cfg = LTX2UpsamplerConfig.from_json(meta["config"], where)
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{where}: could not be read as safetensors ({e}); copy or download it again") from e
    with torch.device("meta"):
        model = LTX2LatentUpsampler(cfg)
    # The blur kernel is fixed, not learned: take it from the file when there, else make it.
    if cfg.rational_resampler:
        state.setdefault("upsampler.blur_down.kernel", binomial_kernel().to(device))
    check_keys(model.state_dict(), state, f"{where}: the latent upsampler's weights do not match the config in its "
               "metadata", f"Expected Lightricks' file as released (e.g. {RELEASED_FILE}), unconverted and unprefixed.")
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    model.load_state_dict({k: v.to(device) for k, v in state.items()}, assign=True)
    return model.eval()
