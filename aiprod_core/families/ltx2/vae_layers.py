"""The building blocks of the LTX-2 video VAE, named as in the released state dict (`conv1.conv.weight`,
`res_blocks.0.norm1`, `per_channel_statistics.mean-of-means`, ...).

Shapes are [B,C,T,H,W] throughout. Convolutions pad time by repeating the edge frames: on the left only
(causal) or on both sides (non-causal); space is padded by the conv itself ("zeros" or "reflect").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def patchify(x: Tensor, p: int) -> Tensor:
    """[B,C,T,H,W] -> [B,C*p*p,T,H/p,W/p]; channel index c*p*p + dx*p + dy (x before y, as the release)."""
    if p == 1:
        return x
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t, h // p, p, w // p, p)  # b c t h dy w dx
    return x.permute(0, 1, 6, 4, 2, 3, 5).reshape(b, c * p * p, t, h // p, w // p)


def unpatchify(x: Tensor, p: int) -> Tensor:
    """Inverse of `patchify`: [B,C*p*p,T,h,w] -> [B,C,T,h*p,w*p]."""
    if p == 1:
        return x
    b, cpp, t, h, w = x.shape
    x = x.reshape(b, cpp // (p * p), p, p, t, h, w)  # b c dx dy t h w
    return x.permute(0, 1, 4, 5, 3, 6, 2).reshape(b, cpp // (p * p), t, h * p, w * p)


def space_to_depth(x: Tensor, st: int, sh: int, sw: int) -> Tensor:
    """[B,C,T,H,W] -> [B,C*st*sh*sw,T/st,H/sh,W/sw], channel index ((c*st + i)*sh + j)*sw + k."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // st, st, h // sh, sh, w // sw, sw)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, c * st * sh * sw, t // st, h // sh, w // sw)


def depth_to_space(x: Tensor, st: int, sh: int, sw: int) -> Tensor:
    """Inverse of `space_to_depth`."""
    b, c, t, h, w = x.shape
    n = st * sh * sw
    x = x.reshape(b, c // n, st, sh, sw, t, h, w)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c // n, t * st, h * sh, w * sw)


class PixelNorm(nn.Module):
    """x / RMS over channels, per position (no weights)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


def make_norm(kind: str, channels: int, eps: float = 1e-6) -> nn.Module:
    """The config's `norm_layer`: "pixel_norm" or GroupNorm with 32 groups."""
    return PixelNorm() if kind == "pixel_norm" else nn.GroupNorm(32, channels, eps=eps)


class CausalConv3d(nn.Module):
    """A 3-D conv whose time padding repeats edge frames; `causal` chooses left-only or both sides.

    x [B,Cin,T,H,W] -> [B,Cout,T',H',W'] with T' = T (stride 1) and H' = H, W' = W at stride 1.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int | tuple[int, int, int] = 1,
                 padding_mode: str = "zeros"):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=(0, kernel // 2, kernel // 2),
                              padding_mode=padding_mode)

    def forward(self, x: Tensor, causal: bool = True) -> Tensor:
        k = self.kernel - 1
        if causal:
            x = torch.cat([x[:, :, :1].expand(-1, -1, k, -1, -1), x], dim=2)
        else:
            first = x[:, :, :1].expand(-1, -1, k // 2, -1, -1)
            last = x[:, :, -1:].expand(-1, -1, k // 2, -1, -1)
            x = torch.cat([first, x, last], dim=2)
        return self.conv(x)


def timestep_features(t: Tensor, dim: int = 256) -> Tensor:
    """Sinusoidal features [N] -> [N,dim] as (cos, sin), frequencies 10000^(-i/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class _MLP(nn.Module):
    def __init__(self, cin: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(nn.functional.silu(self.linear_1(x)))


class TimestepEmbedder(nn.Module):
    """PixArt-alpha's timestep embedding (256 sinusoids -> Linear -> SiLU -> Linear): [N] -> [N,dim]."""

    def __init__(self, dim: int):
        super().__init__()
        self.timestep_embedder = _MLP(256, dim)

    def forward(self, t: Tensor, dtype: torch.dtype) -> Tensor:
        return self.timestep_embedder(timestep_features(t).to(dtype))


class ResnetBlock3D(nn.Module):
    """norm -> SiLU -> conv -> norm -> SiLU -> conv, plus the (projected) input.

    With `timestep_conditioning`, both norms are followed by a per-channel scale and shift from the block's
    `scale_shift_table` [4,C] plus a timestep embedding [B,4C]. With `inject_noise`, per-channel scaled
    spatial noise [H,W] is added after each conv (StyleGAN's noise inputs).
    """

    def __init__(self, cin: int, cout: int | None = None, norm: str = "pixel_norm", inject_noise: bool = False,
                 timestep_conditioning: bool = False, padding_mode: str = "zeros"):
        super().__init__()
        cout = cin if cout is None else cout
        self.inject_noise = inject_noise
        self.timestep_conditioning = timestep_conditioning
        self.norm1 = make_norm(norm, cin)
        self.conv1 = CausalConv3d(cin, cout, 3, padding_mode=padding_mode)
        self.norm2 = make_norm(norm, cout)
        self.conv2 = CausalConv3d(cout, cout, 3, padding_mode=padding_mode)
        if inject_noise:
            self.per_channel_scale1 = nn.Parameter(torch.zeros(cin, 1, 1))
            self.per_channel_scale2 = nn.Parameter(torch.zeros(cin, 1, 1))
        if cin != cout:
            # GroupNorm with one group normalises over (C,T,H,W) together, as the release does.
            self.norm3 = nn.GroupNorm(1, cin, eps=1e-6)
            self.conv_shortcut = nn.Conv3d(cin, cout, 1)
        if timestep_conditioning:
            self.scale_shift_table = nn.Parameter(torch.zeros(4, cin))

    def _noise(self, x: Tensor, scale: Tensor, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(x.shape[-2:], device=x.device, dtype=x.dtype, generator=generator)
        return x + (noise[None] * scale.to(x))[None, :, None]

    def forward(self, x: Tensor, causal: bool = True, temb: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        h = self.norm1(x)
        if self.timestep_conditioning:
            if temb is None:
                raise ValueError("this VAE block is timestep-conditioned; pass a timestep embedding")
            # temb [B,4C,1,1,1] -> four [B,C,1,1,1] modulations
            ada = self.scale_shift_table[None, :, :, None, None, None].to(h) + temb.unflatten(1, (4, -1))
            shift1, scale1, shift2, scale2 = ada.unbind(dim=1)
            h = h * (1 + scale1) + shift1
        h = self.conv1(nn.functional.silu(h), causal)
        if self.inject_noise:
            h = self._noise(h, self.per_channel_scale1, generator)
        h = self.norm2(h)
        if self.timestep_conditioning:
            h = h * (1 + scale2) + shift2
        h = self.conv2(nn.functional.silu(h), causal)
        if self.inject_noise:
            h = self._noise(h, self.per_channel_scale2, generator)
        if hasattr(self, "conv_shortcut"):
            x = self.conv_shortcut(self.norm3(x))
        return x + h


class ResBlocks(nn.Module):
    """`res_x`: `num_layers` ResnetBlock3D at one width, sharing one timestep embedding [B,4C]."""

    def __init__(self, channels: int, num_layers: int, norm: str, inject_noise: bool = False,
                 timestep_conditioning: bool = False, padding_mode: str = "zeros"):
        super().__init__()
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.time_embedder = TimestepEmbedder(4 * channels)
        self.res_blocks = nn.ModuleList(
            ResnetBlock3D(channels, channels, norm, inject_noise, timestep_conditioning, padding_mode)
            for _ in range(num_layers)
        )

    def forward(self, x: Tensor, causal: bool = True, timestep: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        temb = None
        if self.timestep_conditioning:
            if timestep is None:
                raise ValueError("this VAE block is timestep-conditioned; pass a timestep")
            temb = self.time_embedder(timestep.flatten(), x.dtype)[:, :, None, None, None]  # [B,4C,1,1,1]
        for block in self.res_blocks:
            x = block(x, causal, temb, generator)
        return x


class SpaceToDepthDownsample(nn.Module):
    """`compress_*_res`: a conv then space/time-to-depth, plus the input folded the same way and averaged over
    channel groups. Halving time replicates the first frame first, so frame 0 stays alone in latent frame 0.

    x [B,Cin,T,H,W] -> [B,Cout,(T+1)/st or T,H/sh,W/sw].
    """

    def __init__(self, cin: int, cout: int, stride: tuple[int, int, int], padding_mode: str = "zeros"):
        super().__init__()
        self.stride = stride
        self.group_size = cin * math.prod(stride) // cout
        self.conv = CausalConv3d(cin, cout // math.prod(stride), 3, padding_mode=padding_mode)

    def forward(self, x: Tensor, causal: bool = True) -> Tensor:
        if self.stride[0] == 2:
            x = torch.cat([x[:, :, :1], x], dim=2)
        skip = space_to_depth(x, *self.stride)
        skip = skip.unflatten(1, (-1, self.group_size)).mean(dim=2)
        return space_to_depth(self.conv(x, causal), *self.stride) + skip


class DepthToSpaceUpsample(nn.Module):
    """`compress_*` in the decoder: a conv to prod(stride)*Cin/reduction channels, then depth-to-space; with
    `residual`, plus the input unfolded the same way and tiled over channels. Doubling time drops the first
    output frame (the mirror of the encoder's replicated first frame).

    x [B,Cin,T,H,W] -> [B,Cin/reduction,T*st-(st-1),H*sh,W*sw].
    """

    def __init__(self, cin: int, stride: tuple[int, int, int], residual: bool = False, reduction: int = 1,
                 padding_mode: str = "zeros"):
        super().__init__()
        self.stride = stride
        self.residual = residual
        self.repeats = math.prod(stride) // reduction
        self.conv = CausalConv3d(cin, math.prod(stride) * cin // reduction, 3, padding_mode=padding_mode)

    def forward(self, x: Tensor, causal: bool = True) -> Tensor:
        drop = 1 if self.stride[0] == 2 else 0
        y = depth_to_space(self.conv(x, causal), *self.stride)[:, :, drop:]
        if self.residual:
            skip = depth_to_space(x, *self.stride).repeat(1, self.repeats, 1, 1, 1)
            y = y + skip[:, :, drop:]
        return y


class PerChannelStatistics(nn.Module):
    """The latent's per-channel mean and std over the training data: normalised z = (z - mean) / std."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("std-of-means", torch.ones(channels))
        self.register_buffer("mean-of-means", torch.zeros(channels))

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = (1, -1, 1, 1, 1)
        return self.get_buffer("mean-of-means").view(shape).to(x), self.get_buffer("std-of-means").view(shape).to(x)

    def normalize(self, x: Tensor) -> Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def un_normalize(self, x: Tensor) -> Tensor:
        mean, std = self._stats(x)
        return x * std + mean
