"""Hybrid backbone: attention blocks (A) interleaved with depthwise 3D-conv blocks (C).

The layout follows LTX-Video's transformer (patch size 1, since the VAE already patchifies;
AdaLN-single from PixArt-alpha; QK RMSNorm across heads; 3D fractional RoPE; a PixArt caption
projection) and replaces some attention blocks with conv blocks, whose cost is linear in the token
count. The model predicts the rectified-flow velocity `noise - x0`.

Shapes: B batch, C latent channels, (t, h, w) latent grid, N = t*h*w tokens, W width, H heads,
D head_dim, L text tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..config import BackboneConfig
from .rope import apply_rope, rope_cos_sin

Rope = tuple[Tensor, Tensor]
Grid = tuple[int, int, int]

_NORM_EPS = 1e-6
_TIME_FREQ_DIM = 256  # sinusoidal channels of the timestep embedding, as in PixArt / LTX


def scale_shift_table(rows: int, width: int) -> nn.Parameter:
    """randn(rows, width) / sqrt(width), AdaLN's learned offsets. Built on the meta device (shapes only, for
    memory plans) nothing is drawn: a random op there imports torch's compiler stack, about a second."""
    t = torch.empty(rows, width)
    if not t.is_meta:
        t.normal_().div_(width**0.5)  # the numbers randn draws
    return nn.Parameter(t)


def timestep_embedding(t: Tensor, dim: int = _TIME_FREQ_DIM, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of timesteps t [B] -> [B, dim], cos first (diffusers `flip_sin_to_cos`)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([args.cos(), args.sin()], dim=-1)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """AdaLN: RMS-normalise x [B,N,W] without affine, then x * (1 + scale) + shift with [B,1,W] values."""
    return torch.addcmul(shift, F.rms_norm(x, (x.shape[-1],), eps=_NORM_EPS), 1 + scale)


class QKNorm(nn.RMSNorm):
    """RMSNorm with its gain cast to the input's dtype: under bf16 autocast a Linear's output is bf16 while the
    gain stays float32, and PyTorch's fused kernel takes only matching dtypes (else a slower path that warns)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.eps)


class Attention(nn.Module):
    """Multi-head attention with QK RMSNorm across heads (LTX style); self-attention when context is None.

    Projections are plain `to_q`, `to_k`, `to_v`, `to_out` Linears, the names a LoRA targets.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.norm_q = QKNorm(width, eps=_NORM_EPS)
        self.norm_k = QKNorm(width, eps=_NORM_EPS)
        self.to_out = nn.Linear(width, width)
        self.query_chunk = 0  # > 0: queries in chunks, bounding the scores a non-fused SDPA kernel materialises

    def forward(
        self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None, rope: Rope | None = None
    ) -> Tensor:
        """x [B,N,W], context [B,L,W] or None, mask [B,1,1,L] bool (True = attend) -> [B,N,W]."""
        b, n, w = x.shape
        kv = x if context is None else context
        # (B, N, W) -> (B, H, N, D); the norm spans all heads before the split, as in LTX
        q = self.norm_q(self.to_q(x)).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.norm_k(self.to_k(kv)).view(b, kv.shape[1], self.heads, -1).transpose(1, 2)
        v = self.to_v(kv).view(b, kv.shape[1], self.heads, -1).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        c = self.query_chunk
        if 0 < c < n:
            out = torch.cat([F.scaled_dot_product_attention(q[:, :, i : i + c], k, v, attn_mask=mask)
                             for i in range(0, n, c)], dim=2)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, D)
        return self.to_out(out.transpose(1, 2).reshape(b, n, w))


class FeedForward(nn.Module):
    """Gated MLP (SwiGLU): proj_in W -> 2*mlp_dim, value * silu(gate), proj_out mlp_dim -> W."""

    def __init__(self, width: int, mlp_dim: int):
        super().__init__()
        self.proj_in = nn.Linear(width, 2 * mlp_dim)
        self.proj_out = nn.Linear(mlp_dim, width)

    def forward(self, x: Tensor) -> Tensor:
        """x [B,N,W] -> [B,N,W]."""
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(value * F.silu(gate))


class AttentionBlock(nn.Module):
    """Block "A": AdaLN self-attention with 3D RoPE, cross-attention to the caption, gated MLP."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.attn1 = Attention(cfg.width, cfg.heads)
        self.attn2 = Attention(cfg.width, cfg.heads)
        self.ff = FeedForward(cfg.width, cfg.mlp_dim)
        # the block's own offset on the shared AdaLN-single values (PixArt-alpha)
        self.scale_shift_table = scale_shift_table(6, cfg.width)

    def forward(
        self, x: Tensor, temb: Tensor, context: Tensor, context_mask: Tensor | None, rope: Rope, grid: Grid
    ) -> Tensor:
        """x [B,N,W], temb [B,6W], context [B,L,W], context_mask [B,1,1,L] bool or None -> [B,N,W]."""
        mod = self.scale_shift_table + temb.view(temb.shape[0], 6, -1)  # (B, 6, W)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.unsqueeze(2).unbind(1)
        x = torch.addcmul(x, gate_msa, self.attn1(_modulate(x, shift_msa, scale_msa), rope=rope))
        # cross-attention is ungated as in LTX; a parameter-free norm keeps its input scale fixed
        x = x + self.attn2(F.rms_norm(x, (x.shape[-1],), eps=_NORM_EPS), context, context_mask)
        return torch.addcmul(x, gate_mlp, self.ff(_modulate(x, shift_mlp, scale_mlp)))


class ConvBlock(nn.Module):
    """Block "C": AdaLN depthwise k^3 conv over (t,h,w), then an AdaLN gated MLP; no text attention."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        k = cfg.conv_kernel
        self.conv = nn.Conv3d(cfg.width, cfg.width, k, padding=k // 2, groups=cfg.width)
        self.ff = FeedForward(cfg.width, cfg.mlp_dim)
        self.scale_shift_table = scale_shift_table(6, cfg.width)

    def forward(
        self, x: Tensor, temb: Tensor, context: Tensor, context_mask: Tensor | None, rope: Rope, grid: Grid
    ) -> Tensor:
        """x [B,N,W], temb [B,6W] -> [B,N,W]; context, context_mask and rope are unused (same call as A)."""
        b, n, w = x.shape
        mod = self.scale_shift_table + temb.view(b, 6, -1)
        shift_c, scale_c, gate_c, shift_mlp, scale_mlp, gate_mlp = mod.unsqueeze(2).unbind(1)
        # (B, N, W) viewed as (B, W, t, h, w) in channels_last_3d: a view, no copy, and the fast CPU path
        h = _modulate(x, shift_c, scale_c).view(b, *grid, w).permute(0, 4, 1, 2, 3)
        h = self.conv(h).permute(0, 2, 3, 4, 1).reshape(b, n, w)  # (B, N, W)
        x = torch.addcmul(x, gate_c, h)  # x + gate * h in one pass
        return torch.addcmul(x, gate_mlp, self.ff(_modulate(x, shift_mlp, scale_mlp)))


def position_features(grid: Grid, n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """[t*h*w, 6n] sin/cos of k*pi*f for k = 1..n, where f is each token's place along t, h and w as a fraction of
    the clip (0 at the first frame or edge, 1 at the last): the same features at any resolution or length."""
    axes = []
    for size in grid:
        f = (torch.arange(size, dtype=torch.float32) + 0.5) / size if size > 1 else torch.zeros(1)
        axes.append(f)
    frac = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # (N, 3)
    angles = (frac[:, :, None] * torch.arange(1, n + 1) * math.pi).reshape(len(frac), -1)  # (N, 3n)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(device=device, dtype=dtype)


class HybridBackbone(nn.Module):
    """Velocity predictor for rectified flow over a patchified video latent.

    `blocks` holds the blocks in `cfg.pattern` order; each is called as
    `block(x, temb, context, context_mask, rope, grid)`, so a streaming engine can run them one by one.
    """

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w = cfg.width
        self.gradient_checkpointing = False

        self.proj_in = nn.Linear(cfg.in_channels, w)
        if cfg.absolute_positions:
            # zero at init: a model extended with it starts out computing what it did before
            self.pos_embed = nn.Linear(6 * cfg.absolute_positions, w)
            nn.init.zeros_(self.pos_embed.weight)
            nn.init.zeros_(self.pos_embed.bias)
        self.time_embed = nn.Sequential(nn.Linear(_TIME_FREQ_DIM, w), nn.SiLU(), nn.Linear(w, w))
        self.caption_projection = nn.Sequential(
            nn.Linear(cfg.text_dim, w), nn.GELU(approximate="tanh"), nn.Linear(w, w)
        )
        self.text_pool = nn.Linear(w, w) if cfg.pooled_text else None
        self.adaln_single = nn.Linear(w, 6 * w)  # shared by all blocks (AdaLN-single)
        self.blocks = nn.ModuleList(AttentionBlock(cfg) if c == "A" else ConvBlock(cfg) for c in cfg.pattern)

        # output head: LayerNorm, AdaLN shift/scale from the embedding, then Linear(W -> C)
        self.scale_shift_table = scale_shift_table(2, w)
        self.proj_out = nn.Linear(w, cfg.in_channels)
        # zero output at init: the first training steps predict 0 instead of noise from random weights
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

        self._grid_cache: dict[tuple, Any] = {}

    def set_attention_chunk(self, queries: int) -> None:
        """Self- and cross-attention take `queries` queries at a time (0: all at once). The result is the same up to
        summation order; it bounds the scores an SDPA kernel without fused attention materialises (the memory
        planner asks for it then)."""
        if queries < 0:
            raise ValueError(f"attention chunk {queries} must be >= 0 (0 = all queries at once)")
        for block in self.blocks:
            if isinstance(block, AttentionBlock):
                block.attn1.query_chunk = block.attn2.query_chunk = queries

    def _per_grid(self, kind: str, grid: Grid, device: torch.device, build: Callable[[], Any]) -> Any:
        """`build()` for a latent grid on a device, built once: every step of a run has the same grid."""
        key = (kind, *grid, str(device))
        if key not in self._grid_cache:
            if len(self._grid_cache) >= 16:  # a few resolutions at most; keep memory bounded
                self._grid_cache.clear()
            self._grid_cache[key] = build()
        return self._grid_cache[key]

    def rope(self, grid: Grid, device: torch.device) -> Rope:
        """RoPE tables (cos, sin_rot), each [N, head_dim], for a latent grid (t, h, w); cached per grid."""
        c = self.cfg
        return self._per_grid("rope", grid, device,
                              lambda: rope_cos_sin(*grid, c.head_dim, c.rope_max_pos, c.rope_theta, device))

    def _check_inputs(self, x: Tensor, sigma: Tensor, context: Tensor, context_mask: Tensor | None) -> None:
        c = self.cfg
        if x.ndim != 5 or x.shape[1] != c.in_channels:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected [B, {c.in_channels}, t, h, w] "
                "(a latent from the VAE with backbone.in_channels channels)"
            )
        b = x.shape[0]
        if sigma.shape not in ((b,), ()):
            raise ValueError(
                f"sigma has shape {tuple(sigma.shape)}; expected [{b}] (one noise level per sample)"
            )
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != c.text_dim:
            raise ValueError(
                f"context has shape {tuple(context.shape)}; expected [{b}, L, {c.text_dim}] "
                "(text encoder states with backbone.text_dim features)"
            )
        if context_mask is not None and context_mask.shape != context.shape[:2]:
            raise ValueError(
                f"context_mask has shape {tuple(context_mask.shape)}; expected {tuple(context.shape[:2])} "
                "to match context [B, L]"
            )

    def _prepare_text(self, context: Tensor, context_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Project the caption and build its key mask.

        context [B,L,text_dim], context_mask [B,L] or None -> ctx [B,L',W] and a mask [B,1,1,L'] bool
        (True = attend) or None, with L' <= L.
        """
        if context_mask is None:
            return self.caption_projection(context), None
        valid = context_mask.bool()  # (B, L)
        # drop the tail that is padding in every row: it costs keys in every cross-attention and
        # changes nothing (encoders often pad to 256-512 tokens for a 20-token prompt)
        used = valid.any(0).cpu()
        keep = int(used.nonzero().max()) + 1 if used.any() else 1
        context, valid = context[:, :keep], valid[:, :keep]
        ctx = self.caption_projection(context)  # (B, L', W)
        has_text = valid.any(dim=1, keepdim=True)  # (B, 1)
        # a row with no valid token (empty prompt) attends to an all-zero caption instead of
        # a fully masked one, which would make SDPA return NaN; padding still has no effect
        ctx = ctx * has_text.unsqueeze(-1)
        valid = valid | ~has_text
        return ctx, valid[:, None, None, :]  # mask broadcasts over heads and queries

    def forward(
        self, x: Tensor, sigma: Tensor, context: Tensor, context_mask: Tensor | None = None
    ) -> Tensor:
        """Predict the velocity (noise - x0).

        x [B,C,t,h,w] noisy latent, sigma [B] noise level in [0,1], context [B,L,text_dim] text states,
        context_mask [B,L] bool or 0/1 (None: all valid) -> [B,C,t,h,w].
        """
        self._check_inputs(x, sigma, context, context_mask)
        b, _, t, h, w = x.shape
        grid = (t, h, w)
        # a bf16 model under a float32 sampler: the input is cast to the weights and the velocity back, so the
        # sampler's state keeps full precision (under autocast both are float32 and nothing changes)
        out_dtype, x = x.dtype, x.to(self.proj_in.weight.dtype)
        tokens = self.proj_in(x.flatten(2).transpose(1, 2))  # (B, N, W), tokens in (t,h,w) order
        if self.cfg.absolute_positions:
            n = self.cfg.absolute_positions
            feats = self._per_grid("positions", grid, x.device,
                                   lambda: position_features(grid, n, x.device, torch.float32))
            tokens = tokens + self.pos_embed(feats.to(tokens.dtype))

        ctx, mask = self._prepare_text(context.to(tokens.dtype), context_mask)

        emb = self.time_embed(timestep_embedding(sigma.expand(b) * 1000).to(tokens.dtype))  # (B, W)
        if self.text_pool is not None:
            m = torch.ones_like(ctx[..., :1]) if mask is None else mask[:, 0, 0, :, None].to(ctx.dtype)
            pooled = (ctx * m).sum(1) / m.sum(1).clamp_min(1)  # masked mean, (B, W)
            emb = emb + self.text_pool(pooled)
        temb = self.adaln_single(F.silu(emb))  # (B, 6W)
        rope = self.rope(grid, x.device)

        # not tied to .training: LoRA training runs the frozen backbone in eval mode and needs it too
        use_ckpt = self.gradient_checkpointing and torch.is_grad_enabled()
        for block in self.blocks:
            if use_ckpt:
                # early_stop=False: the re-run goes to the block's end, so forward hooks (block streaming) see it
                tokens = checkpoint(block, tokens, temb, ctx, mask, rope, grid, use_reentrant=False, early_stop=False)
            else:
                tokens = block(tokens, temb, ctx, mask, rope, grid)

        shift, scale = (self.scale_shift_table + emb[:, None]).unsqueeze(2).unbind(1)  # (B, 1, W) each
        out = F.layer_norm(tokens, (tokens.shape[-1],), eps=_NORM_EPS)
        out = self.proj_out(torch.addcmul(shift, out, 1 + scale))  # (B, N, C)
        return out.transpose(1, 2).reshape(b, -1, t, h, w).to(out_dtype)
