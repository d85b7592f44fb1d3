"""Causal video VAE in the manner of LTX-Video: patchify, causal 3D convs, space/time-to-depth stages.

A clip of 1 + k*tc frames gives 1 + k latent frames: the first frame is encoded alone, every later
latent frame covers tc new frames. Everything is causal in time (replicate-padded causal convs,
per-position RMS norms, causal temporal attention), so the decoder can run chunk by chunk with a cache
and give the same frames as a whole-clip pass, and spatial tiles blend with small seams.

Shapes: video [B,3,F,H,W] in [-1,1]; latent [B,C,t,h,w] with t = 1 + (F-1)/tc, h = H/sc, w = W/sc.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import VAEConfig
from .layers import (
    CausalConv3d,
    CausalResBlock,
    CausalState,
    CausalTemporalAttention,
    ChannelRMSNorm,
    conv3d,
    depth_to_space,
    space_to_depth,
)

logger = logging.getLogger(__name__)

_LOGVAR_RANGE = (-30.0, 20.0)  # as LTX's DiagonalGaussianDistribution, keeps exp() finite


def _stage_factors(stage: str) -> tuple[int, int]:
    """(time factor, space factor) of one `down` stage."""
    return (2 if stage in ("all", "time") else 1), (2 if stage in ("all", "space") else 1)


class CausalDownsample(nn.Module):
    """Space/time-to-depth then a 1x1x1 projection (a stride-2 conv with kernel 2).

    x [B,Cin,T,H,W] -> [B,Cout,T',H',W'] with T' = (T+1)/2 when time is halved (T odd), else T.
    Replicating the first frame once before folding time keeps frame 0 alone in latent frame 0.
    """

    def __init__(self, in_channels: int, out_channels: int, stage: str):
        super().__init__()
        self.ft, self.fs = _stage_factors(stage)
        self.proj = nn.Conv3d(in_channels * self.ft * self.fs * self.fs, out_channels, 1)

    def forward(self, x: Tensor, state: CausalState | None = None) -> Tensor:
        if self.ft == 2:
            if state is None or self not in state:  # the start of a clip; later chunks bring even frame counts
                x = torch.cat([x[:, :, :1], x], dim=2)
            if state is not None:
                state[self] = True
        return conv3d(self.proj, space_to_depth(x, self.ft, self.fs))


class CausalUpsample(nn.Module):
    """1x1x1 projection then depth-to-space (a stride-2 transposed conv with kernel 2).

    x [B,Cin,T,H,W] -> [B,Cout,T',H',W'], T' = 2T-1 at the start of a clip (the frame that mirrors
    the encoder's replicated first frame is dropped), 2T for later chunks; H' = 2H when space is
    doubled. `state` remembers that the start has been passed.
    """

    def __init__(self, in_channels: int, out_channels: int, stage: str):
        super().__init__()
        self.ft, self.fs = _stage_factors(stage)
        self.proj = nn.Conv3d(in_channels, out_channels * self.ft * self.fs * self.fs, 1)

    def forward(self, x: Tensor, state: CausalState | None = None) -> Tensor:
        x = depth_to_space(conv3d(self.proj, x), self.ft, self.fs)
        if self.ft == 2:
            at_start = state is None or self not in state
            if at_start:
                x = x[:, :, 1:]
            if state is not None:
                state[self] = True
        return x


def _patchify(x: Tensor, p: int) -> Tensor:
    """[B,C,F,H,W] -> [B,C*p*p,F,H/p,W/p]."""
    return space_to_depth(x, 1, p)


def _unpatchify(x: Tensor, p: int) -> Tensor:
    """[B,C*p*p,F,h,w] -> [B,C,F,h*p,w*p]."""
    return depth_to_space(x, 1, p)


class VideoEncoder(nn.Module):
    """[B,3*p*p,F,H/p,W/p] -> [B,latent_channels+1,t,h,w]: means plus one shared log-variance."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.channels
        self.conv_in = CausalConv3d(cfg.in_channels * cfg.patch_size**2, ch[0], 3)
        blocks: list[nn.Module] = []
        for i, stage in enumerate(cfg.down):
            blocks += [CausalResBlock(ch[i]) for _ in range(cfg.layers_per_level)]
            blocks.append(CausalDownsample(ch[i], ch[i + 1], stage))
        blocks += [CausalResBlock(ch[-1]) for _ in range(cfg.layers_per_level)]
        if cfg.mid_attention:
            blocks.append(CausalTemporalAttention(ch[-1]))
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = ChannelRMSNorm(ch[-1])
        self.conv_out = CausalConv3d(ch[-1], cfg.latent_channels + 1, 3)

    def forward(self, x: Tensor, state: CausalState | None = None) -> Tensor:
        x = self.conv_in(x, state)
        for block in self.blocks:
            x = block(x, state)
        return self.conv_out(F.silu(self.norm_out(x)), state)


class VideoDecoder(nn.Module):
    """[B,latent_channels,t,h,w] -> [B,3*p*p,1+(t-1)*tc,H/p,W/p] at the start of a clip.

    With a `state` dict, consecutive calls on consecutive latent chunks continue the clip: later
    chunks give t*tc frames each.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.channels
        self.conv_in = CausalConv3d(cfg.latent_channels, ch[-1], 3)
        blocks: list[nn.Module] = [CausalResBlock(ch[-1]) for _ in range(cfg.layers_per_level)]
        if cfg.mid_attention:
            blocks.append(CausalTemporalAttention(ch[-1]))
        for i in reversed(range(len(cfg.down))):
            blocks.append(CausalUpsample(ch[i + 1], ch[i], cfg.down[i]))
            blocks += [CausalResBlock(ch[i]) for _ in range(cfg.layers_per_level)]
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = ChannelRMSNorm(ch[0])
        self.conv_out = CausalConv3d(ch[0], cfg.in_channels * cfg.patch_size**2, 3)

    def forward(self, z: Tensor, state: CausalState | None = None) -> Tensor:
        x = self.conv_in(z, state)
        for block in self.blocks:
            x = block(x, state)
        return self.conv_out(F.silu(self.norm_out(x)), state)


def _tile_spans(size: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) spans of tiles along one axis; the last one is aligned to the end."""
    if tile >= size:
        return [(0, size)]
    stride = tile - overlap
    starts = [*range(0, size - tile, stride), size - tile]
    return [(s, s + tile) for s in starts]


def _tile_ramps(spans: list[tuple[int, int]], scale: int, device: torch.device) -> list[Tensor]:
    """Per-tile blend weights along one axis in output pixels: linear ramps over each overlap."""
    ramps = []
    for i, (s, e) in enumerate(spans):
        wgt = torch.ones((e - s) * scale, device=device)
        if i > 0:
            n = (spans[i - 1][1] - s) * scale
            if n > 0:
                wgt[:n] *= (torch.arange(n, device=device) + 0.5) / n
        if i + 1 < len(spans):
            n = (e - spans[i + 1][0]) * scale
            if n > 0:
                wgt[-n:] *= ((torch.arange(n, device=device) + 0.5) / n).flip(0)
        ramps.append(wgt)
    return ramps


VAE_CHUNK = 4  # latent frames at a time where memory is tight: the same result, in the memory of a few frames


class CausalVideoVAE(nn.Module):
    """Causal video VAE built from a `VAEConfig`.

    Buffers `latent_mean` [C] and `latent_std` [C] hold per-channel latent statistics (saved in the
    state dict); `encode` returns (z - latent_mean) / latent_std and `decode` takes that form.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder = VideoEncoder(cfg)
        self.decoder = VideoDecoder(cfg)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    @property
    def temporal_compression(self) -> int:
        return self.cfg.temporal_compression

    @property
    def spatial_compression(self) -> int:
        return self.cfg.spatial_compression

    def _dtype(self) -> torch.dtype:
        return self.encoder.conv_in.conv.weight.dtype

    def _stats(self, z: Tensor) -> tuple[Tensor, Tensor]:
        shape = (1, -1, 1, 1, 1)
        return (
            self.latent_mean.to(z.dtype).view(shape),
            self.latent_std.to(z.dtype).view(shape),
        )

    def normalize(self, z: Tensor) -> Tensor:
        """Raw latent [B,C,t,h,w] -> normalised (z - latent_mean) / latent_std."""
        mean, std = self._stats(z)
        return (z - mean) / std

    def unnormalize(self, z: Tensor) -> Tensor:
        """Normalised latent [B,C,t,h,w] -> raw z * latent_std + latent_mean."""
        mean, std = self._stats(z)
        return z * std + mean

    # ---- encode -------------------------------------------------------------------------------

    def _check_video(self, video: Tensor) -> None:
        c = self.cfg.in_channels
        if not isinstance(video, Tensor) or video.ndim != 5:
            shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
            raise ValueError(
                f"video has shape {shape}; expected 5 dims [B,{c},F,H,W] with values in [-1,1] "
                "(ComfyUI IMAGE [F,H,W,3] in 0..1 must be permuted to [1,3,F,H,W] and mapped to -1..1)"
            )
        if video.shape[1] != c:
            raise ValueError(
                f"video has {video.shape[1]} channels (shape {tuple(video.shape)}); expected {c} "
                f"in dim 1, i.e. [B,{c},F,H,W]; permute channels-last input first"
            )
        self.cfg.check_clip(*video.shape[2:])

    def encode_moments(self, video: Tensor, temporal_chunk: int = 0) -> tuple[Tensor, Tensor]:
        """video [B,3,F,H,W] in [-1,1] -> (mean, logvar), both un-normalised [B,C,t,h,w].

        logvar is one shared channel broadcast to all C channels (LTX's "uniform" log-variance).
        temporal_chunk: latent frames encoded at a time (0 = the whole clip); the result equals whole encoding
        and the peak memory follows the chunk.
        """
        self._check_video(video)
        c, p, tc = self.cfg.latent_channels, self.cfg.patch_size, self.temporal_compression
        t = 1 + (video.shape[2] - 1) // tc
        w = self.encoder.conv_in.conv.weight  # the clip moves to the encoder's device a chunk at a time
        if temporal_chunk <= 0 or temporal_chunk >= t:
            h = self.encoder(_patchify(video.to(w.device, w.dtype), p))
        else:
            state: CausalState = {}
            parts = []
            # latent frame 0 is pixel frame 0 alone; each later latent frame covers tc pixel frames
            for s in range(0, t, temporal_chunk):
                f0, f1 = (0 if s == 0 else 1 + (s - 1) * tc), 1 + (min(s + temporal_chunk, t) - 1) * tc
                parts.append(self.encoder(_patchify(video[:, :, f0:f1].to(w.device, w.dtype), p), state))
            h = torch.cat(parts, dim=2)
        mean = h[:, :c]
        logvar = h[:, c:].clamp(*_LOGVAR_RANGE).expand_as(mean)
        return mean, logvar

    def encode(self, video: Tensor, sample: bool = False, generator: torch.Generator | None = None,
               temporal_chunk: int = 0) -> Tensor:
        """video [B,3,F,H,W] in [-1,1] -> normalised latent [B,C,t,h,w].

        sample=False returns the posterior mean; sample=True draws mean + std * noise from `generator`.
        temporal_chunk: latent frames at a time (0 = whole clip), as in `encode_moments`.
        """
        mean, logvar = self.encode_moments(video, temporal_chunk)
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * noise
        return self.normalize(z)

    # ---- decode -------------------------------------------------------------------------------

    def _check_latent(self, z: Tensor) -> None:
        c = self.cfg.latent_channels
        if not isinstance(z, Tensor) or z.ndim != 5:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"latent has shape {shape}; expected 5 dims [B,{c},t,h,w]")
        if z.shape[1] != c:
            raise ValueError(
                f"latent has {z.shape[1]} channels (shape {tuple(z.shape)}); this VAE expects {c}; "
                "check that the latent comes from the same model family as the VAE"
            )
        if min(z.shape[2:]) < 1:
            raise ValueError(f"latent shape {tuple(z.shape)} has an empty dim; expected t, h, w >= 1")

    def _decode_chunks(self, z: Tensor, temporal_chunk: int) -> Iterator[tuple[int, Tensor]]:
        """Yield (first output frame, frames [B,3,n,H,W]) for normalised latent z, chunk by chunk."""
        p = self.cfg.patch_size
        if temporal_chunk <= 0 or temporal_chunk >= z.shape[2]:
            yield 0, _unpatchify(self.decoder(self.unnormalize(z)), p)
            return
        state: CausalState = {}
        f0 = 0
        for s in range(0, z.shape[2], temporal_chunk):
            # Un-normalised per chunk: no full-length copy of the latent is held.
            y = _unpatchify(self.decoder(self.unnormalize(z[:, :, s : s + temporal_chunk]), state), p)
            yield f0, y
            f0 += y.shape[2]

    def decode(
        self, z: Tensor, temporal_chunk: int = 0, spatial_tile: int = 0, tile_overlap: int = 2
    ) -> Tensor:
        """Normalised latent [B,C,t,h,w] -> video [B,3,1+(t-1)*tc,h*sc,w*sc], roughly in [-1,1].

        temporal_chunk: latent frames per chunk (0 = whole clip); the result equals whole decoding.
        spatial_tile: tile size in latent pixels (0 = whole frame); tiles overlap by `tile_overlap`
        latent pixels and are blended with linear ramps, so peak memory follows the tile size.
        """
        self._check_latent(z)
        for name, v, off in (
            ("temporal_chunk", temporal_chunk, "chunking"),
            ("spatial_tile", spatial_tile, "tiling"),
        ):
            if v < 0:
                raise ValueError(f"{name}={v} must be >= 0 (0 = no {off})")
        if tile_overlap < 0:
            raise ValueError(f"tile_overlap={tile_overlap} must be >= 0 latent pixels")
        if spatial_tile and spatial_tile <= tile_overlap:
            raise ValueError(
                f"spatial_tile={spatial_tile} must be larger than tile_overlap={tile_overlap}; "
                f"use e.g. spatial_tile={tile_overlap + 4} or a smaller overlap"
            )
        z = z.to(self._dtype())
        b, _, t, h, w = z.shape
        tc, sc = self.temporal_compression, self.spatial_compression
        out_shape = (b, self.cfg.in_channels, 1 + (t - 1) * tc, h * sc, w * sc)

        if not spatial_tile or (spatial_tile >= h and spatial_tile >= w):
            if temporal_chunk <= 0:
                return _unpatchify(self.decoder(self.unnormalize(z)), self.cfg.patch_size)
            # Written in place so peak memory holds one chunk plus the output, not a list to concatenate.
            out = z.new_empty(out_shape)
            for f0, y in self._decode_chunks(z, temporal_chunk):
                out[:, :, f0 : f0 + y.shape[2]] = y
            return out

        ys = _tile_spans(h, spatial_tile, tile_overlap)
        xs = _tile_spans(w, spatial_tile, tile_overlap)
        wy = _tile_ramps(ys, sc, z.device)
        wx = _tile_ramps(xs, sc, z.device)
        logger.debug("tiled VAE decode: %d x %d tiles of %d latent px", len(ys), len(xs), spatial_tile)
        out = z.new_zeros(out_shape)
        wsum = z.new_zeros(out_shape[-2:], dtype=torch.float32)  # weights summed exactly, even in bf16
        for (y0, y1), ry in zip(ys, wy, strict=True):
            for (x0, x1), rx in zip(xs, wx, strict=True):
                wgt = (ry[:, None] * rx[None, :]).to(z.dtype)
                oy, ox = slice(y0 * sc, y1 * sc), slice(x0 * sc, x1 * sc)
                for f0, y in self._decode_chunks(z[..., y0:y1, x0:x1], temporal_chunk):
                    out[:, :, f0 : f0 + y.shape[2], oy, ox] += y * wgt
                wsum[oy, ox] += wgt.float()
        return out.div_(wsum.to(out.dtype))  # in place: a second output-sized tensor would double the peak

    def forward(self, video: Tensor) -> Tensor:
        """Reconstruction: video [B,3,F,H,W] -> decode(encode(video)) [B,3,F,H,W]."""
        return self.decode(self.encode(video))


@torch.no_grad()
def decode_latent(vae: CausalVideoVAE, latent: Tensor, temporal_chunk: int = 0, spatial_tile: int = 0,
                  to_cpu: bool = False) -> Tensor:
    """LATENT [B,C,t,h,w] -> frames [B,T,H,W,3] in 0..1 (converted on the CPU with `to_cpu`)."""
    video = vae.decode(latent, temporal_chunk=temporal_chunk, spatial_tile=spatial_tile)  # [B,3,T,H,W]
    if to_cpu:
        video = video.cpu()  # the float copies below would otherwise take device memory
    return ((video.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 4, 1).contiguous()


@torch.no_grad()
def latent_rgb_factors(vae: CausalVideoVAE, images: Tensor) -> tuple[Tensor, Tensor]:
    """A linear map from a normalised latent pixel to the mean colour of the pixels it covers: (factors [C,3],
    bias [3]), colours in [-1,1]; what ComfyUI's latent previews need. Fitted by least squares on the latents of
    `images` [N,3,H,W] in [-1,1] (H, W multiples of the spatial compression)."""
    sc = vae.cfg.spatial_compression
    p = next(vae.parameters())
    z = vae.encode(images[:, :, None].to(p))[:, :, 0].float().cpu()  # [N,C,h,w]
    rgb = F.avg_pool2d(images.float(), sc)
    x = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    y = rgb.permute(0, 2, 3, 1).reshape(-1, 3)
    w = torch.linalg.lstsq(torch.cat([x, torch.ones(len(x), 1)], 1), y).solution  # [C+1,3]
    return w[:-1], w[-1]
