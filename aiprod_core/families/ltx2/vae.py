"""LTX-2's video VAE (Lightricks, arXiv 2501.00103 and 2601.03233): 32x space, 8x time, 128 latent channels.

The encoder is causal in time: patchify by 4, causal 3-D res blocks and space/time-to-depth stages. It returns
the latent mean normalised with the per-channel statistics kept in the file. The released decoder is
non-causal and may be timestep-conditioned (then it also mixes a little noise into the latent, as the reference
does); it bounds memory by decoding overlapping tiles in space and time, blended as `ltx_core` does.

Shapes: video [B,3,F,H,W] in [-1,1], F = 1 + 8k; latent [B,128,1+(F-1)/8,H/32,W/32].
"""

from __future__ import annotations

import logging
from itertools import product

import torch
from torch import Tensor, nn

from ...config import ConfigError
from .vae_config import LTX2VAEConfig
from .vae_layers import (
    CausalConv3d,
    DepthToSpaceUpsample,
    PerChannelStatistics,
    ResBlocks,
    ResnetBlock3D,
    SpaceToDepthDownsample,
    TimestepEmbedder,
    make_norm,
    patchify,
    unpatchify,
)
from .vae_tiling import (
    frames_to_latent,
    pixels_to_latent,
    space_output,
    space_tile_size,
    split_frames,
    split_symmetric,
    split_time,
    time_output,
)

logger = logging.getLogger(__name__)

_STRIDES = {"time": (2, 1, 1), "space": (1, 2, 2), "all": (2, 2, 2)}
DECODE_TIMESTEP = 0.05  # the reference decoder's timestep when none is given
DECODE_NOISE_SCALE = 0.025  # noise mixed into the latent by a timestep-conditioned decoder


def _encoder_block(name: str, p: dict, cin: int, cfg: LTX2VAEConfig) -> tuple[nn.Module, int]:
    pad, norm = cfg.encoder_padding, cfg.norm_layer
    if name == "res_x":
        return ResBlocks(cin, p["num_layers"], norm, padding_mode=pad), cin
    if name == "res_x_y":
        cout = cin * p.get("multiplier", 2)
        return ResnetBlock3D(cin, cout, norm, padding_mode=pad), cout
    kind = name.split("_")[1]  # compress_{time,space,all}[_res|_x_y]
    if name.endswith("_res"):
        cout = cin * p.get("multiplier", 2)
        return SpaceToDepthDownsample(cin, cout, _STRIDES[kind], pad), cout
    cout = cin * p.get("multiplier", 2) if name.endswith("_x_y") else cin
    return CausalConv3d(cin, cout, 3, stride=_STRIDES[kind], padding_mode=pad), cout


def _decoder_block(name: str, p: dict, cin: int, cfg: LTX2VAEConfig) -> tuple[nn.Module, int]:
    pad, norm = cfg.decoder_padding, cfg.norm_layer
    noise = p.get("inject_noise", False)
    if name == "res_x":
        return ResBlocks(cin, p["num_layers"], norm, noise, cfg.timestep_conditioning, pad), cin
    if name == "res_x_y":
        cout = cin // p.get("multiplier", 2)
        return ResnetBlock3D(cin, cout, norm, noise, False, pad), cout
    kind = name.split("_")[1]
    reduction = p.get("multiplier", 1)
    residual = p.get("residual", False) if kind == "all" else False
    return DepthToSpaceUpsample(cin, _STRIDES[kind], residual, reduction, pad), cin // reduction


class VideoEncoder(nn.Module):
    """video [B,3,F,H,W] -> raw latent moments [B,C',t,h,w] (C' = 129 for a "uniform" log-variance)."""

    def __init__(self, cfg: LTX2VAEConfig):
        super().__init__()
        ch = cfg.latent_channels  # the encoder's first width is the latent width
        self.conv_in = CausalConv3d(cfg.in_channels * cfg.patch_size**2, ch, 3, padding_mode=cfg.encoder_padding)
        blocks = []
        for name, p in cfg.encoder_blocks:
            block, ch = _encoder_block(name, p, ch, cfg)
            blocks.append(block)
        self.down_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = make_norm(cfg.norm_layer, ch)
        extra = {"uniform": 1, "constant": 1, "per_channel": cfg.latent_channels}[cfg.latent_log_var]
        self.conv_out = CausalConv3d(ch, cfg.latent_channels + extra, 3, padding_mode=cfg.encoder_padding)
        self.patch_size = cfg.patch_size

    def forward(self, video: Tensor) -> Tensor:
        x = self.conv_in(patchify(video, self.patch_size))
        for block in self.down_blocks:
            x = block(x)
        return self.conv_out(nn.functional.silu(self.conv_norm_out(x)))


class VideoDecoder(nn.Module):
    """raw latent [B,128,t,h,w] -> video [B,3,1+(t-1)*8,32h,32w]; blocks run in reverse config order."""

    def __init__(self, cfg: LTX2VAEConfig):
        super().__init__()
        self.causal = cfg.causal_decoder
        self.timestep_conditioning = cfg.timestep_conditioning
        self.patch_size = cfg.patch_size
        # The release has three 2x channel reductions on the way up, hence 8 x base at the bottom.
        ch = cfg.decoder_base_channels * 8
        self.conv_in = CausalConv3d(cfg.latent_channels, ch, 3, padding_mode=cfg.decoder_padding)
        blocks = []
        for name, p in reversed(cfg.decoder_blocks):
            block, ch = _decoder_block(name, p, ch, cfg)
            blocks.append(block)
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = make_norm(cfg.norm_layer, ch)
        self.conv_out = CausalConv3d(ch, cfg.out_channels * cfg.patch_size**2, 3, padding_mode=cfg.decoder_padding)
        if cfg.timestep_conditioning:
            self.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            self.last_time_embedder = TimestepEmbedder(2 * ch)
            self.last_scale_shift_table = nn.Parameter(torch.zeros(2, ch))

    def forward(self, z: Tensor, timestep: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """z is raw (un-normalised); `timestep` [B] is used only by a timestep-conditioned decoder."""
        x = self.conv_in(z, self.causal)
        t = None
        if self.timestep_conditioning:
            t = timestep * self.timestep_scale_multiplier.to(x)
        for block in self.up_blocks:
            if isinstance(block, ResBlocks):
                x = block(x, self.causal, t, generator)
            elif isinstance(block, ResnetBlock3D):
                x = block(x, self.causal, None, generator)
            else:
                x = block(x, self.causal)
        x = self.conv_norm_out(x)
        if self.timestep_conditioning:
            emb = self.last_time_embedder(t.flatten(), x.dtype)  # [B,2C]
            ada = self.last_scale_shift_table[None].to(x) + emb.unflatten(1, (2, -1))
            shift, scale = ada[..., None, None, None].unbind(dim=1)
            x = x * (1 + scale) + shift
        x = self.conv_out(nn.functional.silu(x), self.causal)
        return unpatchify(x, self.patch_size)


class LTX2VideoVAE(nn.Module):
    """The video VAE in the released layout: `encoder.*`, `decoder.*`, `per_channel_statistics.*`.

    `encoder=False` or `decoder=False` leaves that half out (a decode-only VAE needs no encoder weights).
    """

    def __init__(self, cfg: LTX2VAEConfig, encoder: bool = True, decoder: bool = True):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder = VideoEncoder(cfg) if encoder else None
        self.decoder = VideoDecoder(cfg) if decoder else None
        self.per_channel_statistics = PerChannelStatistics(cfg.latent_channels)

    @property
    def temporal_compression(self) -> int:
        return self.cfg.temporal_compression

    @property
    def spatial_compression(self) -> int:
        return self.cfg.spatial_compression

    def _weights(self) -> Tensor:
        return next(p for p in self.parameters())

    # ---- encode -------------------------------------------------------------------------------

    def _check_video(self, video: Tensor) -> None:
        c = self.cfg.in_channels
        if self.encoder is None:
            raise RuntimeError("this LTX-2 VAE was loaded without its encoder; load it with encoder=True to encode")
        if not isinstance(video, Tensor) or video.ndim != 5 or video.shape[1] != c:
            shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
            raise ValueError(f"video has shape {shape}; expected [B,{c},F,H,W] with values in [-1,1]")
        tc, sc = self.cfg.encoder_factors
        f, h, w = video.shape[2:]
        if (f - 1) % tc:
            lo = 1 + (f - 1) // tc * tc
            raise ConfigError(f"frames={f} is not 1 + {tc}k for the LTX-2 VAE; use {lo} or {lo + tc}")
        for name, v in (("height", h), ("width", w)):
            if v < sc or v % sc:
                lo = max(sc, v // sc * sc)
                raise ConfigError(f"{name}={v} is not a multiple of {sc} for the LTX-2 VAE; use {lo} or {lo + sc}")

    def encode_moments(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """video [B,3,F,H,W] in [-1,1] -> (mean, logvar), both raw (un-normalised) [B,128,t,h,w]."""
        self._check_video(video)
        w = self._weights()
        h = self.encoder(video.to(w.device, w.dtype))
        c = self.cfg.latent_channels
        mean = h[:, :c]
        if self.cfg.latent_log_var == "per_channel":
            logvar = h[:, c:]
        elif self.cfg.latent_log_var == "uniform":
            logvar = h[:, c:].expand_as(mean)
        else:  # "constant": the encoder's extra channel is ignored
            logvar = torch.full_like(mean, -30.0)
        return mean, logvar

    def encode(self, video: Tensor, temporal_chunk: int = 0, spatial_tile: int = 0, tile_overlap: int = 2,
               temporal_overlap: int = 2) -> Tensor:
        """video [B,3,F,H,W] in [-1,1] -> normalised latent mean [B,128,1+(F-1)/8,H/32,W/32].

        temporal_chunk / spatial_tile: encode tiles of that many latent frames (x8 frames) / latent pixels
        (x32 pixels) at a time, overlapping by `temporal_overlap` / `tile_overlap` (at least 2 each, as
        `ltx_core`'s tiled_encode requires), and joined as it joins them; 0 = the whole clip / frame.
        """
        if not temporal_chunk and not spatial_tile:
            return self.per_channel_statistics.normalize(self.encode_moments(video)[0])
        self._check_video(video)
        tc, sc = self.cfg.encoder_factors
        for name, v, overlap, oname in (("spatial_tile", spatial_tile, tile_overlap, "tile_overlap"),
                                        ("temporal_chunk", temporal_chunk, temporal_overlap, "temporal_overlap")):
            if v and not 2 <= overlap < v:
                raise ValueError(f"{name}={v} with {oname}={overlap}: encoder tiles need an overlap of at least 2 "
                                 f"and less than the tile; use {oname}=2 and {name}>=3")
        b, _, f, h, w = video.shape
        whole = (slice(None), slice(None), torch.ones(1))
        times = [(slice(s.start, s.end), *frames_to_latent(s, tc))
                 for s in split_frames(f, temporal_chunk * tc, temporal_overlap * tc)] if temporal_chunk else [whole]
        axes = [[(slice(s.start, s.end), *pixels_to_latent(s, sc))
                 for s in split_symmetric(n, spatial_tile * sc, tile_overlap * sc)] if spatial_tile else [whole]
                for n in (h, w)]
        p = self._weights()
        out = torch.zeros(b, self.cfg.latent_channels, 1 + (f - 1) // tc, h // sc, w // sc, device=p.device,
                          dtype=p.dtype)
        wsum = torch.zeros(out.shape[2:], device=p.device, dtype=torch.float32)
        for (vt, zt, mt), (vh, zh, mh), (vw, zw, mw) in product(times, *axes):
            z = self.encode(video[:, :, vt, vh, vw])
            m = (mt[:, None, None] * mh[None, :, None] * mw[None, None, :]).to(p.device)
            out[:, :, zt, zh, zw] += z * m.to(z.dtype)
            wsum[zt, zh, zw] += m
        return out.div_(wsum.clamp_(min=1e-8).to(out.dtype))

    # ---- decode -------------------------------------------------------------------------------

    def _decode_tile(self, z: Tensor, timestep: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """Normalised latent tile -> frames, as the reference decoder's forward."""
        if self.cfg.timestep_conditioning:
            noise = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
            z = noise * DECODE_NOISE_SCALE + (1.0 - DECODE_NOISE_SCALE) * z
        return self.decoder(self.per_channel_statistics.un_normalize(z), timestep, generator)

    def _check_decode_args(self, z: Tensor, temporal_chunk: int, spatial_tile: int, tile_overlap: int,
                           temporal_overlap: int) -> None:
        c = self.cfg.latent_channels
        if self.decoder is None:
            raise RuntimeError("this LTX-2 VAE was loaded without its decoder; load it with decoder=True to decode")
        if not isinstance(z, Tensor) or z.ndim != 5 or z.shape[1] != c or min(z.shape[2:]) < 1:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"latent has shape {shape}; the LTX-2 VAE expects [B,{c},t,h,w]")
        for name, v, overlap, oname in (("spatial_tile", spatial_tile, tile_overlap, "tile_overlap"),
                                        ("temporal_chunk", temporal_chunk, temporal_overlap, "temporal_overlap")):
            if v < 0 or overlap < 0:
                raise ValueError(f"{name}={v} and {oname}={overlap} must be >= 0 (0 = no tiling)")
            if v and (v < 2 or overlap >= v):
                raise ValueError(f"{name}={v} with {oname}={overlap}: tiles need at least 2 latent units and more "
                                 f"than their overlap; use e.g. {name}={max(2, overlap + 1)}")

    def _decode_tiles(self, t: int, h: int, w: int, temporal_chunk: int, spatial_tile: int, tile_overlap: int,
                      temporal_overlap: int) -> tuple[list, list, list]:
        """Per axis, the tiles as (latent slice, output slice, output weights); untiled axes get one tile."""
        tc, sc = self.temporal_compression, self.spatial_compression
        whole = [(slice(None), slice(None), torch.ones(1))]
        times = [(slice(s.start, s.end), *time_output(s, tc))
                 for s in split_time(t, temporal_chunk, temporal_overlap)] if temporal_chunk else whole
        axes = []
        for n in (h, w):
            if not spatial_tile:
                axes.append(whole)
                continue
            spans = split_symmetric(n, space_tile_size(spatial_tile, tile_overlap, n, max(h, w)), tile_overlap)
            if self.cfg.decoder_padding == "reflect" and min(s.end - s.start for s in spans) < 2:
                raise ValueError(f"spatial_tile={spatial_tile} with tile_overlap={tile_overlap} leaves a tile 1 "
                                 f"latent pixel wide on a {h}x{w} latent, which reflect padding cannot decode; "
                                 f"use a larger overlap or spatial_tile={spatial_tile + 1}")
            axes.append([(slice(s.start, s.end), *space_output(s, sc)) for s in spans])
        return times, axes[0], axes[1]

    def decode(self, z: Tensor, temporal_chunk: int = 0, spatial_tile: int = 0, tile_overlap: int = 2,
               temporal_overlap: int = 3, timestep: float | Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Normalised latent [B,128,t,h,w] -> video [B,3,1+(t-1)*8,32h,32w], roughly in [-1,1].

        temporal_chunk: latent frames per temporal tile (0 = whole clip), tiles overlapping by
        `temporal_overlap`; spatial_tile: latent pixels per tile on the longer side (0 = whole frame), tiles
        overlapping by `tile_overlap`. Tiles are blended as `ltx_core`'s `tiled_decode` blends them (its
        TilingConfig in pixels and frames is these numbers times 32 and 8); peak memory follows the tile.
        timestep: the decode timestep of a timestep-conditioned decoder (default 0.05); `generator` draws
        its noise.
        """
        self._check_decode_args(z, temporal_chunk, spatial_tile, tile_overlap, temporal_overlap)
        w = self._weights()
        z = z.to(w.device, w.dtype)
        b, _, t, h, wd = z.shape
        if self.cfg.timestep_conditioning:
            ts = DECODE_TIMESTEP if timestep is None else timestep
            timestep = torch.as_tensor(ts, device=z.device, dtype=z.dtype).expand(b).clone()
        if not temporal_chunk and not spatial_tile:
            return self._decode_tile(z, timestep, generator)

        times, rows, cols = self._decode_tiles(t, h, wd, temporal_chunk, spatial_tile, tile_overlap,
                                               temporal_overlap)
        logger.debug("LTX-2 tiled decode: %d x %d x %d tiles", len(times), len(rows), len(cols))
        tc, sc = self.temporal_compression, self.spatial_compression
        out = z.new_zeros(b, self.cfg.out_channels, 1 + (t - 1) * tc, h * sc, wd * sc)
        wsum = torch.zeros(out.shape[2:], dtype=torch.float32, device=z.device)
        # The reference's tile order (time, then rows, then columns), so a noisy decoder draws the same noise.
        for (zt, ot, mt), (zh, oh, mh), (zw, ow, mw) in product(times, rows, cols):
            y = self._decode_tile(z[:, :, zt, zh, zw], timestep, generator)
            m = (mt[:, None, None] * mh[None, :, None] * mw[None, None, :]).to(z.device)
            n = min(y.shape[2], m.shape[0] if m.shape[0] > 1 else y.shape[2])
            out[:, :, ot, oh, ow][:, :, :n] += y[:, :, :n] * m[:n].to(y.dtype)
            wsum[ot, oh, ow][:n] += m[:n]
        return out.div_(wsum.clamp_(min=1e-8).to(out.dtype))

    def forward(self, video: Tensor) -> Tensor:
        """Reconstruction: decode(encode(video))."""
        return self.decode(self.encode(video))
