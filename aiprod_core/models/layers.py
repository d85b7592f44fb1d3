"""Small layers shared by the causal video VAE: causal 3D conv, channel RMS norm, space/depth shuffles.

Causal modules take an optional `state` dict (the causal cache). Decoding a clip chunk by chunk with the
same dict gives the same result as decoding it whole: each module stores under its own key (the module
itself) what the next chunk needs from the past.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CausalState = dict[nn.Module, Any]
"""Causal cache for chunked decoding: module -> what that module carries to the next chunk."""


def _triple(k: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (k, k, k) if isinstance(k, int) else tuple(k)  # type: ignore[return-value]


def conv3d(conv: nn.Conv3d, x: Tensor) -> Tensor:
    """Apply `conv` to x [B,Cin,T,H,W] -> [B,Cout,T',H',W'], taking oneDNN on CPU float32.

    PyTorch's CPU dispatch sends batch-1 inputs with few frames to its reference conv3d (a size
    heuristic tuned for 2D); for a chunk of a few frames that path is 3-10x slower than oneDNN.
    """
    if (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.padding_mode == "zeros"
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    ):
        return torch.mkldnn_convolution(
            x.contiguous(), conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups
        )
    return conv(x)


class ChannelRMSNorm(nn.Module):
    """RMS norm over channels at each position (PixelNorm with a gain). x [B,C,...] -> [B,C,...].

    Per-position statistics keep the encoder causal and chunked decoding exact, which GroupNorm over
    time or space would not.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        # float32 statistics so bf16/fp16 weights do not lose the normalisation.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(dim=1, keepdim=True) + self.eps)
        gain = self.weight.view(1, -1, *([1] * (x.ndim - 2)))
        return xf.to(x.dtype) * gain


class CausalConv3d(nn.Module):
    """3D conv causal in time: x [B,Cin,T,H,W] -> [B,Cout,T,H,W] (stride 1, spatial 'same' zero padding).

    Output frame i sees input frames <= i. The kt-1 frames of left context come from `state` when a
    previous chunk left them there, otherwise the first frame is replicated (as LTX-Video does), so
    the start of a clip is padded the same way whether it is decoded whole or in chunks.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int, int] = 3):
        super().__init__()
        kt, kh, kw = _triple(kernel_size)
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"CausalConv3d spatial kernel ({kh}, {kw}) must be odd for 'same' padding")
        self.time_pad = kt - 1
        self.conv = nn.Conv3d(in_channels, out_channels, (kt, kh, kw), padding=(0, kh // 2, kw // 2))

    def forward(self, x: Tensor, state: CausalState | None = None) -> Tensor:
        if self.time_pad:
            if state is not None and self in state:
                past = state[self]
            else:
                past = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1)
            x = torch.cat([past, x], dim=2)
            if state is not None:
                # clone: a view would keep the whole padded chunk alive until the next call.
                state[self] = x[:, :, -self.time_pad :].clone()
        return conv3d(self.conv, x)


def space_to_depth(x: Tensor, ft: int, fs: int) -> Tensor:
    """[B,C,T*ft,H*fs,W*fs] -> [B,C*ft*fs*fs,T,H,W]; channel order (c, ft, fs_h, fs_w)."""
    b, c, t, h, w = x.shape
    if t % ft or h % fs or w % fs:
        raise ValueError(f"space_to_depth: shape {tuple(x.shape)} is not divisible by (t={ft}, hw={fs})")
    x = x.reshape(b, c, t // ft, ft, h // fs, fs, w // fs, fs)
    x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(b, c * ft * fs * fs, t // ft, h // fs, w // fs)


def depth_to_space(x: Tensor, ft: int, fs: int) -> Tensor:
    """[B,C*ft*fs*fs,T,H,W] -> [B,C,T*ft,H*fs,W*fs]; inverse of `space_to_depth`."""
    b, cg, t, h, w = x.shape
    g = ft * fs * fs
    if cg % g:
        raise ValueError(f"depth_to_space: {cg} channels are not divisible by ft*fs*fs={g}")
    x = x.reshape(b, cg // g, ft, fs, fs, t, h, w)
    x = x.permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(b, cg // g, t * ft, h * fs, w * fs)


class CausalResBlock(nn.Module):
    """norm-SiLU-causal conv, twice, plus the input. x [B,C,T,H,W] -> [B,C,T,H,W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(channels)
        self.conv1 = CausalConv3d(channels, channels, 3)
        self.norm2 = ChannelRMSNorm(channels)
        self.conv2 = CausalConv3d(channels, channels, 3)

    def forward(self, x: Tensor, state: CausalState | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)), state)
        h = self.conv2(F.silu(self.norm2(h)), state)
        return x + h


class CausalTemporalAttention(nn.Module):
    """Self-attention over time at each spatial position; frame i attends to frames <= i.

    x [B,C,T,H,W] -> [B,C,T,H,W] (residual). With `state`, keys and values of earlier chunks are kept
    so a chunk attends to the whole past exactly as in a whole-clip pass.
    """

    def __init__(self, channels: int, head_dim: int = 64):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        if channels % self.heads:
            raise ValueError(f"attention channels={channels} not divisible by heads={self.heads}")
        self.norm = ChannelRMSNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: Tensor, state: CausalState | None = None) -> Tensor:
        b, c, t, h, w = x.shape
        n, d = self.heads, c // self.heads
        y = self.norm(x).permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)
        q, k, v = (u.reshape(b * h * w, t, n, d).transpose(1, 2) for u in self.qkv(y).chunk(3, dim=-1))
        if state is not None:
            if self in state:
                pk, pv = state[self]
                k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            state[self] = (k, v)
        past = k.shape[2] - t
        mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        o = self.out(o.transpose(1, 2).reshape(b * h * w, t, c))
        return x + o.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2)
