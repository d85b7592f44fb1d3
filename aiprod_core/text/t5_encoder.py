"""The byte model's T5 encoder (Raffel et al. 2020; T5 v1.1's gated GELU, as ByT5), written out.

The same computation, module names and state-dict keys as transformers' `T5EncoderModel`
(`encoder.block.0.layer.0.SelfAttention.q.weight`, ...), so checkpoints, training states and text-encoder
LoRAs read the same, and tests check the outputs against transformers'. Our own because importing
transformers' T5 takes about 3 s (it pulls in torch.distributed.tensor, dynamo and sympy): six times the
64x64 clip the built-in model generates. HF folders and ComfyUI's umT5 files still load through transformers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class T5EncoderConfig:
    vocab_size: int
    d_model: int
    d_kv: int
    num_heads: int
    num_layers: int
    d_ff: int
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6


class T5LayerNorm(nn.Module):
    """RMS norm without a bias, its statistics in float32 (T5's layer norm)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(self.weight.dtype)


def relative_position_bucket(relative: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5's bidirectional buckets: exact for small distances, logarithmic up to max_distance, per direction."""
    num_buckets //= 2
    buckets = (relative > 0).long() * num_buckets
    relative = relative.abs()
    max_exact = num_buckets // 2
    large = max_exact + (
        torch.log(relative.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).long()
    return buckets + torch.where(relative < max_exact, relative, large.clamp(max=num_buckets - 1))


class T5Attention(nn.Module):
    """Self-attention without the 1/sqrt(d) scale (T5 folds it into the initialisation)."""

    def __init__(self, cfg: T5EncoderConfig, has_relative_attention_bias: bool):
        super().__init__()
        inner = cfg.num_heads * cfg.d_kv
        self.cfg, self.n_heads = cfg, cfg.num_heads
        self.q = nn.Linear(cfg.d_model, inner, bias=False)
        self.k = nn.Linear(cfg.d_model, inner, bias=False)
        self.v = nn.Linear(cfg.d_model, inner, bias=False)
        self.o = nn.Linear(inner, cfg.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(cfg.relative_attention_num_buckets, cfg.num_heads)

    def position_bias(self, length: int, device: torch.device) -> Tensor:
        """[1, heads, L, L] from the first layer's bucket embedding; later layers reuse it."""
        pos = torch.arange(length, device=device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.cfg.relative_attention_num_buckets,
                                           self.cfg.relative_attention_max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, n, _ = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.view(b, n, self.n_heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)),
                                             attn_mask=bias.to(x.dtype), scale=1.0)
        return self.o(out.transpose(1, 2).reshape(b, n, -1))


class T5LayerSelfAttention(nn.Module):
    def __init__(self, cfg: T5EncoderConfig, has_relative_attention_bias: bool):
        super().__init__()
        self.SelfAttention = T5Attention(cfg, has_relative_attention_bias)
        self.layer_norm = T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        return x + self.SelfAttention(self.layer_norm(x), bias)


class T5DenseGatedActDense(nn.Module):
    def __init__(self, cfg: T5EncoderConfig):
        super().__init__()
        self.wi_0 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wi_1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wo = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))


class T5LayerFF(nn.Module):
    def __init__(self, cfg: T5EncoderConfig):
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(cfg)
        self.layer_norm = T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class T5Block(nn.Module):
    def __init__(self, cfg: T5EncoderConfig, has_relative_attention_bias: bool):
        super().__init__()
        self.layer = nn.ModuleList([T5LayerSelfAttention(cfg, has_relative_attention_bias), T5LayerFF(cfg)])

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        return self.layer[1](self.layer[0](x, bias))


class T5Stack(nn.Module):
    def __init__(self, cfg: T5EncoderConfig, embed_tokens: nn.Embedding):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.block = nn.ModuleList(T5Block(cfg, has_relative_attention_bias=i == 0) for i in range(cfg.num_layers))
        self.final_layer_norm = T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon)


class T5Encoder(nn.Module):
    """input ids [B, L], attention mask [B, L] (1 = token) -> last hidden state [B, L, d_model]."""

    def __init__(self, config: T5EncoderConfig):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared)  # tied, as in transformers: one weight, two names

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        enc = self.encoder
        x = enc.embed_tokens(input_ids)
        keys = attention_mask.bool()[:, None, None, :]  # padded keys get no weight
        bias = enc.block[0].layer[0].SelfAttention.position_bias(input_ids.shape[1], x.device)
        bias = bias.masked_fill(~keys, torch.finfo(bias.dtype).min)
        for block in enc.block:
            x = block(x, bias)
        return enc.final_layer_norm(x)
