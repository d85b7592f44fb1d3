"""LTX-2's video transformer (the video stream of the 19B audio-video model), run without its audio stream.

LTX-2 (arXiv 2601.03233) joins a video and an audio transformer with audio<->video cross-attention in every
block. With no audio tokens, Lightricks' reference skips those cross-attentions and the audio stream entirely,
so the video stream alone computes exactly the reference's video velocity for a video-only call; the audio
weights are never loaded. A block: AdaLN-single modulated self-attention (QK RMSNorm, 3D RoPE), text
cross-attention (modulated too in LTX-2.3), a GELU(tanh) MLP; all norms are RMS without affine.

Module and parameter names are those of the released files under `model.diffusion_model.` (`patchify_proj`,
`adaln_single`, `transformer_blocks.N.attn1.to_q`, ...), so weights load and LoRA files apply by name.

Shapes: B batch, C latent channels, (t, h, w) latent grid, N = t*h*w tokens, W width, H heads, D head_dim,
L text tokens.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ...models.backbone import timestep_embedding
from .config import LTX2TransformerConfig
from .files import CONFIG_KEY, LTX2FileError, open_ltx2
from .rope import Rope, apply_rope, rope_tables, video_positions

DEFAULT_FPS = 24.0

# Transformer keys of the audio stream and of the audio<->video cross-attention: never read.
_AUDIO_TOP_LEVEL = ("audio_", "av_ca_")
_AUDIO_IN_BLOCK = ("audio_", "video_to_audio_attn.", "scale_shift_table_a2v_ca_")


def _rms(x: Tensor, eps: float) -> Tensor:
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features (256, cos first) -> Linear -> SiLU -> Linear."""

    def __init__(self, width: int):
        super().__init__()
        self.linear_1 = nn.Linear(256, width)
        self.linear_2 = nn.Linear(width, width)

    def forward(self, t: Tensor, dtype: torch.dtype) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(timestep_embedding(t).to(dtype))))


class _Embedding(nn.Module):
    """Holds the timestep embedder under the released name `emb.timestep_embedder`."""

    def __init__(self, width: int):
        super().__init__()
        self.timestep_embedder = TimestepEmbedder(width)


class AdaLayerNormSingle(nn.Module):
    """AdaLN-single (PixArt-alpha, arXiv 2310.00426, sec. 2.3): one MLP maps the timestep to `rows` modulation
    vectors shared by all blocks; each block adds its own learned table."""

    def __init__(self, width: int, rows: int):
        super().__init__()
        self.emb = _Embedding(width)
        self.linear = nn.Linear(width, rows * width)

    def forward(self, t: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """t [M] timesteps (sigma * 1000) -> (modulation [M, rows*W], embedding [M, W])."""
        embedded = self.emb.timestep_embedder(t, dtype)
        return self.linear(F.silu(embedded)), embedded


class CaptionProjection(nn.Module):
    """PixArt-alpha's caption projection: Linear -> GELU(tanh) -> Linear."""

    def __init__(self, in_features: int, width: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, width)
        self.linear_2 = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))


class _GeluProj(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """W -> 4W -> GELU(tanh) -> W; `net.0.proj` and `net.2` as released."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(_GeluProj(width, 4 * width), nn.Identity(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Multi-head attention with RMSNorm over all heads on q and k (with gains), RoPE on self-attention and,
    in LTX-2.3, a per-head output gate 2 * sigmoid(Linear(x))."""

    def __init__(self, width: int, heads: int, head_dim: int, context_dim: int, eps: float, gated: bool,
                 rope_type: str):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.rope_type = heads, rope_type
        self.q_norm = nn.RMSNorm(inner, eps=eps)
        self.k_norm = nn.RMSNorm(inner, eps=eps)
        self.to_q = nn.Linear(width, inner)
        self.to_k = nn.Linear(context_dim, inner)
        self.to_v = nn.Linear(context_dim, inner)
        self.to_gate_logits = nn.Linear(width, heads) if gated else None
        self.to_out = nn.ModuleList([nn.Linear(inner, width)])
        self.query_chunk = 0  # > 0: queries in chunks, bounding the scores a non-fused SDPA kernel materialises

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None,
                rope: Rope | None = None, values_only: bool = False) -> Tensor:
        """x [B,N,W], context [B,L,Wc] or None (self-attention), mask [B,1,1,L] additive -> [B,N,W].

        values_only: STG's perturbation (the reference's skipped self-attention): each token attends only to
        itself, so the attention returns the values and q, k are never computed.
        """
        kv = x if context is None else context
        v = self.to_v(kv)
        b, n, _ = x.shape
        if values_only:
            out = v.view(b, n, self.heads, -1)  # (B, N, H, D)
        else:
            out = self._attend(self.q_norm(self.to_q(x)), self.k_norm(self.to_k(kv)), v, mask, rope)
        if self.to_gate_logits is not None:
            out = out * (2.0 * torch.sigmoid(self.to_gate_logits(x))).unsqueeze(-1)
        return self.to_out[0](out.reshape(b, n, -1))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, rope: Rope | None) -> Tensor:
        """q [B,N,H*D], k and v [B,L,H*D] -> softmax attention [B,N,H,D]."""
        if rope is not None:
            q, k = apply_rope(q, rope, self.rope_type), apply_rope(k, rope, self.rope_type)
        b, n, _ = q.shape
        # (B, N, H*D) -> (B, H, N, D)
        q, k, v = (t.view(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        c = self.query_chunk
        if 0 < c < n:
            out = torch.cat([F.scaled_dot_product_attention(q[:, :, i : i + c], k, v, attn_mask=mask)
                             for i in range(0, n, c)], dim=2)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2)


class TransformerBlock(nn.Module):
    """Self-attention, text cross-attention and MLP, each modulated by the shared AdaLN-single vectors plus this
    block's `scale_shift_table`."""

    def __init__(self, cfg: LTX2TransformerConfig):
        super().__init__()
        w, eps = cfg.width, cfg.norm_eps
        self.eps, self.cross_attention_adaln = eps, cfg.cross_attention_adaln
        common = dict(heads=cfg.num_attention_heads, head_dim=cfg.attention_head_dim, eps=eps,
                      gated=cfg.apply_gated_attention, rope_type=cfg.rope_type)
        self.attn1 = Attention(w, context_dim=w, **common)
        self.attn2 = Attention(w, context_dim=cfg.cross_attention_dim, **common)
        self.ff = FeedForward(w)
        self.scale_shift_table = nn.Parameter(torch.empty(cfg.adaln_rows, w))
        if cfg.cross_attention_adaln:
            self.prompt_scale_shift_table = nn.Parameter(torch.empty(2, w))

    def forward(self, x: Tensor, timestep: Tensor, context: Tensor, context_mask: Tensor | None, rope: Rope,
                prompt_timestep: Tensor | None = None, skip_self_attention: bool = False) -> Tensor:
        """x [B,N,W]; timestep [B,1 or N,rows*W]; context [B,L,Wc]; context_mask [B,1,1,L] additive or None;
        prompt_timestep [B,1,2W] (LTX-2.3); skip_self_attention: STG's perturbed pass -> [B,N,W]."""
        b, m, _ = timestep.shape
        table = self.scale_shift_table
        # (B, 1 or N, rows, W): row r is the r-th modulation vector
        ada = table.to(timestep.dtype) + timestep.view(b, m, table.shape[0], -1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = ada[:, :, :6].unbind(2)
        x = x + self.attn1(_rms(x, self.eps) * (1 + scale_msa) + shift_msa, rope=rope,
                           values_only=skip_self_attention) * gate_msa
        if self.cross_attention_adaln:
            shift_q, scale_q, gate_q = ada[:, :, 6:9].unbind(2)
            shift_kv, scale_kv = (self.prompt_scale_shift_table.to(x.dtype)
                                  + prompt_timestep.view(b, -1, 2, x.shape[-1])).unbind(2)
            query = _rms(x, self.eps) * (1 + scale_q) + shift_q
            x = x + self.attn2(query, context * (1 + scale_kv) + shift_kv, context_mask) * gate_q
        else:
            x = x + self.attn2(_rms(x, self.eps), context, context_mask)
        return x + self.ff(_rms(x, self.eps) * (1 + scale_mlp) + shift_mlp) * gate_mlp


class ConvBlock(nn.Module):
    """AIPROD's block "C" in an LTX-2 transformer (`aiprod hybridize`): a depthwise k^3 conv over the latent grid
    where the released block has self- and cross-attention, then the released block's MLP; modulated as that block
    is, by the shared AdaLN-single vectors plus its own table (rows 0-5 of the same layout). It reads no text and
    has no self-attention for STG to skip. Called as a TransformerBlock, with the grid (t, h, w) besides."""

    takes_grid = True

    def __init__(self, cfg: LTX2TransformerConfig, kernel: int = 3):
        super().__init__()
        w = cfg.width
        self.eps = cfg.norm_eps
        self.conv = nn.Conv3d(w, w, kernel, padding=kernel // 2, groups=w)
        self.ff = FeedForward(w)
        # a fresh block's own offsets (a hybrid's conv blocks are made, not loaded): PixArt's scale
        self.scale_shift_table = nn.Parameter(torch.randn(cfg.adaln_rows, w) / w**0.5)

    def forward(self, x: Tensor, timestep: Tensor, context: Tensor, context_mask: Tensor | None, rope: Rope,
                prompt_timestep: Tensor | None = None, skip_self_attention: bool = False, *,
                grid: tuple[int, int, int]) -> Tensor:
        """x [B,N,W] in (t,h,w) order; timestep [B,1 or N,rows*W] -> [B,N,W]."""
        b, n, w = x.shape
        m = timestep.shape[1]
        ada = self.scale_shift_table.to(timestep.dtype) + timestep.view(b, m, self.scale_shift_table.shape[0], -1)
        shift_c, scale_c, gate_c, shift_mlp, scale_mlp, gate_mlp = ada[:, :, :6].unbind(2)
        h = (_rms(x, self.eps) * (1 + scale_c) + shift_c).view(b, *grid, w).permute(0, 4, 1, 2, 3)
        x = x + self.conv(h).permute(0, 2, 3, 4, 1).reshape(b, n, w) * gate_c
        return x + self.ff(_rms(x, self.eps) * (1 + scale_mlp) + shift_mlp) * gate_mlp


class LTX2VideoTransformer(nn.Module):
    """Velocity predictor of LTX-2 over the video latent: patch size 1 over 128 channels, so a token is one
    latent voxel. Call as the backbone interface: `forward(x, sigma, context, context_mask, fps=...)`."""

    def __init__(self, cfg: LTX2TransformerConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w = cfg.width
        self.patchify_proj = nn.Linear(cfg.in_channels, w)
        if cfg.caption_channels is not None:
            self.caption_projection = CaptionProjection(cfg.caption_channels, w)
        self.adaln_single = AdaLayerNormSingle(w, cfg.adaln_rows)
        if cfg.cross_attention_adaln:
            self.prompt_adaln_single = AdaLayerNormSingle(w, 2)
        self.transformer_blocks = nn.ModuleList(TransformerBlock(cfg) if kind == "A" else ConvBlock(cfg)
                                                for kind in cfg.block_kinds)
        self.scale_shift_table = nn.Parameter(torch.empty(2, w))
        self.proj_out = nn.Linear(w, cfg.out_channels)
        self.gradient_checkpointing = False  # LoRA training: each block re-runs in backward instead of keeping its tensors

    @property
    def blocks(self) -> nn.ModuleList:
        """The blocks under the name AIPROD's backbone gives them; `transformer_blocks` stays the registered name, so
        state-dict keys and LoRA files keep the released paths."""
        return self.transformer_blocks

    def set_attention_chunk(self, queries: int) -> None:
        """Self- and cross-attention take `queries` queries at a time (0: all at once); the same result up to
        summation order, with the score matrix of a non-fused SDPA kernel bounded."""
        if queries < 0:
            raise ValueError(f"attention chunk {queries} must be >= 0 (0 = all queries at once)")
        for block in self.transformer_blocks:
            if hasattr(block, "attn1"):  # a hybrid's conv blocks have no attention
                block.attn1.query_chunk = block.attn2.query_chunk = queries

    def rope(self, grid: tuple[int, int, int], fps: float, dtype: torch.dtype, device: torch.device) -> Rope:
        """Rotary tables for a latent grid (t, h, w) at a frame rate."""
        c = self.cfg
        bounds = video_positions(*grid, fps=fps, device=device)
        return rope_tables(bounds, c.width, c.num_attention_heads, c.positional_embedding_max_pos,
                           c.positional_embedding_theta, c.rope_type, c.double_precision_rope, dtype)

    def _check_inputs(self, x: Tensor, sigma: Tensor, context: Tensor, context_mask: Tensor | None) -> None:
        c = self.cfg
        if x.ndim != 5 or x.shape[1] != c.in_channels:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected [B, {c.in_channels}, t, h, w] "
                             "(a latent of LTX-2's video VAE)")
        b = x.shape[0]
        if sigma.shape not in ((b,), (), (b, *x.shape[2:])):
            raise ValueError(f"sigma has shape {tuple(sigma.shape)}; expected [{b}] (one noise level per sample) "
                             f"or [{b}, {', '.join(map(str, x.shape[2:]))}] (one per latent voxel)")
        text = c.caption_channels if c.caption_channels is not None else c.cross_attention_dim
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != text:
            raise ValueError(f"context has shape {tuple(context.shape)}; expected [{b}, L, {text}] "
                             "(LTX-2's text connector output)")
        if context_mask is not None and context_mask.shape != context.shape[:2]:
            raise ValueError(f"context_mask has shape {tuple(context_mask.shape)}; expected "
                             f"{tuple(context.shape[:2])} to match context [B, L]")

    def embed_timestep(self, sigma: Tensor, batch: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """sigma [B] or [B, N] -> (modulation [B, 1 or N, rows*W], embedding [B, 1 or N, W])."""
        t = sigma.reshape(batch, -1) * self.cfg.timestep_scale_multiplier
        modulation, embedded = self.adaln_single(t.flatten(), dtype)
        return modulation.view(batch, t.shape[1], -1), embedded.view(batch, t.shape[1], -1)

    def forward(self, x: Tensor, sigma: Tensor, context: Tensor, context_mask: Tensor | None = None,
                fps: float = DEFAULT_FPS, skip_self_attention: Collection[int] = ()) -> Tensor:
        """Predict the velocity (noise - x0).

        x [B,C,t,h,w] noisy latent; sigma [B] noise level in [0,1], or [B,t,h,w] per voxel (0 for conditioning
        frames); context [B,L,caption_channels] connector output; context_mask [B,L] bool or 0/1 (None: all
        valid); fps the clip's frame rate, which places frames in time; skip_self_attention: indices of blocks
        whose self-attention returns its values (STG's perturbed prediction) -> [B,C,t,h,w].
        """
        self._check_inputs(x, sigma, context, context_mask)
        skip = set(skip_self_attention)
        if not skip <= set(range(self.cfg.num_layers)):
            raise ValueError(f"skip_self_attention {sorted(skip)} names blocks this model lacks; it has blocks "
                             f"0..{self.cfg.num_layers - 1} (LTX-2 perturbs block 29 of 48, LTX-2.3 block 28)")
        b, _, t, h, w = x.shape
        out_dtype, dtype = x.dtype, self.patchify_proj.weight.dtype
        tokens = self.patchify_proj(x.to(dtype).flatten(2).transpose(1, 2))  # (B, N, W), tokens in (t,h,w) order
        sigma = sigma.expand(b) if sigma.ndim == 0 else sigma
        timestep, embedded = self.embed_timestep(sigma, b, dtype)
        prompt_timestep = None
        if self.cfg.cross_attention_adaln:
            # the step's sigma: conditioning voxels carry 0, the voxels being denoised the step's level
            step_sigma = sigma.reshape(b, -1).amax(dim=1)
            prompt_timestep, _ = self.prompt_adaln_single(step_sigma * self.cfg.timestep_scale_multiplier, dtype)
            prompt_timestep = prompt_timestep.view(b, 1, -1)
        context = context.to(dtype)
        if self.cfg.caption_channels is not None:
            context = self.caption_projection(context)
        mask = None
        if context_mask is not None:
            # additive bias, 0 where valid and -max where padding, as the reference: a row with no valid token
            # attends uniformly instead of producing NaN
            mask = (context_mask.to(dtype) - 1).view(b, 1, 1, -1) * torch.finfo(dtype).max
        rope = self.rope((t, h, w), fps, dtype, x.device)
        # not tied to .training: LoRA training runs the frozen transformer in eval mode and needs it too
        use_ckpt = self.gradient_checkpointing and torch.is_grad_enabled()
        for i, block in enumerate(self.transformer_blocks):
            args = (tokens, timestep, context, mask, rope, prompt_timestep, i in skip)
            kw = {"grid": (t, h, w)} if getattr(block, "takes_grid", False) else {}
            # early_stop=False: the re-run goes to the block's end, so forward hooks (block streaming) see it
            tokens = (checkpoint(block, *args, use_reentrant=False, early_stop=False, **kw) if use_ckpt
                      else block(*args, **kw))
        shift, scale = (self.scale_shift_table.to(dtype) + embedded.unsqueeze(2)).unbind(2)  # (B, 1 or N, W)
        tokens = F.layer_norm(tokens, (tokens.shape[-1],), eps=self.cfg.norm_eps) * (1 + scale) + shift
        velocity = self.proj_out(tokens)  # (B, N, C)
        return velocity.transpose(1, 2).reshape(b, -1, t, h, w).to(out_dtype)


def is_audio_key(key: str) -> bool:
    """Whether a transformer key (prefix stripped) belongs to the audio stream or the audio<->video coupling:
    `audio_*` and `av_ca_*` modules, and in each block `audio_*`, `video_to_audio_attn` and the a2v tables."""
    if key.startswith("transformer_blocks."):
        key = key.split(".", 2)[2]
        return key.startswith(_AUDIO_IN_BLOCK)
    return key.startswith(_AUDIO_TOP_LEVEL)


def load_video_transformer(
    path: str | os.PathLike, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> LTX2VideoTransformer:
    """The video transformer of an LTX-2 file (a released single file or a transformer-only split), its config
    read from the file's metadata; audio weights are not read. fp8 weights are upcast to `dtype`."""
    file = open_ltx2(path)
    file.require("transformer")
    if not file.config:
        raise LTX2FileError(
            f"{file.path} holds an LTX-2 transformer but no '{CONFIG_KEY}' metadata; expected the model config "
            "that Lightricks' files carry (a file re-saved without metadata loses it): use the released file"
        )
    cfg = LTX2TransformerConfig.from_metadata(file.config)
    with torch.device("meta"):
        model = LTX2VideoTransformer(cfg)
    wanted = set(model.state_dict())
    state = file.state_dict("transformer", dtype, device, keep=lambda k: not is_audio_key(k))
    missing, unexpected = sorted(wanted - set(state)), sorted(set(state) - wanted)
    if missing or unexpected:
        raise LTX2FileError(
            f"{file.path}: the transformer's weights do not match its config ({cfg.num_layers} layers, width "
            f"{cfg.width}): missing {missing[:5]}{' ...' if len(missing) > 5 else ''} ({len(missing)}), "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''} ({len(unexpected)}); "
            "expected a released LTX-2 file whose weights and config metadata belong together"
        )
    model.load_state_dict(state, assign=True)
    return model.eval()
