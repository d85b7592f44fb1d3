"""LTX-2's text path after Gemma: the feature extractor and the embeddings connector.

Feature extractor (Lightricks' `FeatureExtractorV1`, the 19B model): Gemma's hidden states of every layer
(embeddings included, so num_layers + 1 of them) are each normalised over the prompt's real tokens, by their
masked mean and range (x8), concatenated per token and mapped by one Linear `3840 * 49 -> 3840` (no bias).
The concatenation runs layer-fastest (`[B, T, D, L] -> [B, T, D * L]`), the order the released Linear expects.
V2 (the 22B LTX-2.3) normalises each token and layer by its RMS instead, rescales by sqrt(out / D) and maps
straight to the transformer's width (Linear with bias): its caption projection sits before the connector.

Embeddings connector (`Embeddings1DConnector`): a small 1-D transformer over the prompt. The real tokens are
moved to the front and every later position up to the context length (1024 tokens in LTX-2) is filled by 128
learnable registers, tiled by position, so the context has a fixed length and no padding: the transformer's
cross-attention sees all of it. Each block is pre-RMSNorm (no weight) self-attention (q/k RMSNorm, 1-D RoPE,
an optional per-head sigmoid gate) and a GELU(tanh) MLP of 4x width; a final RMSNorm closes the stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROPE_TYPES = ("split", "interleaved")
NORM_EPS = 1e-6
RANGE_SCALE = 8.0  # V1's normalised layers span [-8, 8] over the prompt: 8 (x - mean) / (max - min)


class ConnectorConfigError(ValueError):
    """A connector config or file that does not describe LTX-2's text connector."""


@dataclass(frozen=True)
class ConnectorConfig:
    """The text path after Gemma, as a released checkpoint's `transformer` config section describes it.

    `gemma_dim` x `gemma_states` is the feature extractor's input (3840 x 49 for Gemma 3 12B); `version` 1 is
    the 19B model (masked mean/range norm, Linear to gemma_dim, no bias), 2 the 22B (per-token RMS norm,
    Linear with bias to the connector's width).
    """

    gemma_dim: int = 3840
    gemma_states: int = 49
    version: int = 1
    heads: int = 30
    head_dim: int = 128
    layers: int = 2
    registers: int = 128
    theta: float = 10000.0
    max_pos: int = 4096
    rope_type: str = "split"
    double_precision_rope: bool = True
    gated_attention: bool = False

    @property
    def width(self) -> int:
        """The connector's width = the width of the context it hands the transformer."""
        return self.heads * self.head_dim

    def __post_init__(self) -> None:
        if self.rope_type not in ROPE_TYPES:
            raise ConnectorConfigError(f"rope_type={self.rope_type!r}; LTX-2's connector uses one of {ROPE_TYPES}")
        if self.version not in (1, 2):
            raise ConnectorConfigError(f"feature extractor version {self.version}; expected 1 (LTX-2 19B) or 2 "
                                       "(LTX-2.3 22B)")
        if self.version == 1 and self.width != self.gemma_dim:
            raise ConnectorConfigError(
                f"a V1 connector works at Gemma's width {self.gemma_dim}, but heads x head_dim = {self.heads} x "
                f"{self.head_dim} = {self.width}; check connector_num_attention_heads and "
                "connector_attention_head_dim in the checkpoint's config"
            )

    @classmethod
    def from_transformer_config(cls, transformer: dict, gemma_dim: int, gemma_states: int) -> ConnectorConfig:
        """Read the keys Lightricks' configurators read (ltx_core text_encoders/gemma); absent keys take
        ltx-core's defaults. V2 is marked by `caption_proj_before_connector`. As in ltx-core, RoPE's theta is
        10000 whatever the transformer's own `positional_embedding_theta`, and the register count is not read
        from the config (the loader takes it from `learnable_registers`)."""
        v2_keys = ("caption_proj_before_connector", "caption_projection_first_linear",
                   "caption_proj_input_norm", "caption_projection_second_linear")
        present = [k for k in v2_keys if k in transformer]
        version = 1
        if present:
            expected = {v2_keys[0]: True, v2_keys[1]: False, v2_keys[2]: False, v2_keys[3]: False}
            wrong = {k: transformer[k] for k in present if transformer[k] != expected[k]}
            if len(present) != len(v2_keys) or wrong:
                raise ConnectorConfigError(
                    f"caption projection settings {({k: transformer[k] for k in present})} are neither LTX-2 19B's "
                    f"(none of them) nor LTX-2.3's ({expected}); this text path is not one we can build"
                )
            version = 2
        max_pos = transformer.get("connector_positional_embedding_max_pos", [1])
        return cls(
            gemma_dim=gemma_dim,
            gemma_states=gemma_states,
            version=version,
            heads=int(transformer.get("connector_num_attention_heads", 30)),
            head_dim=int(transformer.get("connector_attention_head_dim", 128)),
            layers=int(transformer.get("connector_num_layers", 2)),
            max_pos=int(max_pos[0] if isinstance(max_pos, (list, tuple)) else max_pos),
            rope_type=str(transformer.get("rope_type", "interleaved")),
            double_precision_rope=transformer.get("frequencies_precision", False) == "float64",
            gated_attention=bool(transformer.get("connector_apply_gated_attention", False)),
        )


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.shape[-1],), eps=NORM_EPS)


# --- feature extractor -------------------------------------------------------------------------------------


def normalize_masked_range(states: Tensor, mask: Tensor) -> Tensor:
    """V1: states [B, T, D, L], mask [B, T] bool -> [B, T, D * L], each (prompt, layer) mapped to
    8 (x - mean) / (max - min + eps) over its real tokens; padded tokens are zero."""
    b, t, d, _ = states.shape
    m = mask[:, :, None, None]
    count = (mask.sum(dim=1) * d).to(states.dtype).view(b, 1, 1, 1)
    mean = states.masked_fill(~m, 0.0).sum(dim=(1, 2), keepdim=True) / (count + NORM_EPS)
    low = states.masked_fill(~m, float("inf")).amin(dim=(1, 2), keepdim=True)
    high = states.masked_fill(~m, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normed = RANGE_SCALE * (states - mean) / (high - low + NORM_EPS)
    return normed.reshape(b, t, -1).masked_fill(~mask[:, :, None], 0.0)


def normalize_token_rms(states: Tensor, mask: Tensor) -> Tensor:
    """V2: states [B, T, D, L] -> [B, T, D * L], each (token, layer) divided by its RMS over D; padded tokens zero."""
    b, t, _, _ = states.shape
    normed = states * torch.rsqrt(states.pow(2).mean(dim=2, keepdim=True) + NORM_EPS)
    return normed.reshape(b, t, -1).masked_fill(~mask[:, :, None], 0.0)


class FeatureExtractor(nn.Module):
    """Gemma's hidden states of every layer -> one feature per token: [B, T, gemma_dim] (V1) or [B, T, width] (V2).

    V1's Linear is `aggregate_embed`, V2's `video_aggregate_embed`: the names in the released files.
    """

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__()
        self.version = config.version
        self.gemma_dim = config.gemma_dim
        self.gemma_states = config.gemma_states
        flat = config.gemma_dim * config.gemma_states
        if config.version == 1:
            self.aggregate_embed = nn.Linear(flat, config.gemma_dim, bias=False)
        else:
            self.video_aggregate_embed = nn.Linear(flat, config.width, bias=True)

    def forward(self, states: tuple[Tensor, ...] | list[Tensor] | Tensor, mask: Tensor) -> Tensor:
        """states: num_layers + 1 tensors [B, T, D] (or one [B, T, D, L]); mask [B, T] bool -> [B, T, out]."""
        x = torch.stack(list(states), dim=-1) if isinstance(states, (tuple, list)) else states
        if x.shape[-2:] != (self.gemma_dim, self.gemma_states):
            raise ConnectorConfigError(
                f"the feature extractor takes {self.gemma_states} hidden states of width {self.gemma_dim} "
                f"(Gemma's layers + 1), got {x.shape[-1]} of width {x.shape[-2]}; the Gemma weights and the "
                "LTX-2 checkpoint do not belong together"
            )
        mask = mask.bool()
        if self.version == 1:
            return self.aggregate_embed(normalize_masked_range(x, mask).to(x.dtype))
        linear = self.video_aggregate_embed
        scale = math.sqrt(linear.out_features / self.gemma_dim)
        return linear(normalize_token_rms(x, mask).to(x.dtype) * scale)


# --- connector ---------------------------------------------------------------------------------------------


def rope_1d(length: int, config: ConnectorConfig, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """(cos, sin) for positions 0..length-1: angle_k(p) = f_k (2 p / max_pos - 1), f_k = theta^(k / (K-1)) pi / 2,
    K = width / 2. split -> each [1, H, length, head_dim / 2]; interleaved -> each [1, length, width].
    The frequencies are float32 (from float64 when the config says so), as the weights were trained with."""
    count = config.width // 2
    if config.double_precision_rope:
        grid = np.power(config.theta, np.linspace(0.0, 1.0, count, dtype=np.float64))
        freqs = torch.tensor(grid * math.pi / 2, dtype=torch.float32)
    else:
        freqs = config.theta ** torch.linspace(0.0, 1.0, count, dtype=torch.float32) * math.pi / 2
    frac = torch.arange(length, dtype=torch.float32, device=device) / config.max_pos
    angles = freqs.to(device) * (frac[:, None] * 2 - 1)  # (length, K)
    cos, sin = angles.cos()[None], angles.sin()[None]
    if config.rope_type == "split":  # consecutive slices of the table go to consecutive heads
        cos = cos.unflatten(-1, (config.heads, -1)).transpose(1, 2)
        sin = sin.unflatten(-1, (config.heads, -1)).transpose(1, 2)
    else:
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    return cos.to(dtype), sin.to(dtype)


def apply_rope_1d(x: Tensor, rope: tuple[Tensor, Tensor], rope_type: str) -> Tensor:
    """Rotate x [B, T, width]. split: channel i with i + head_dim/2 in each head; interleaved: 2i with 2i + 1."""
    cos, sin = rope
    if rope_type == "split":
        b, t, _ = x.shape
        halves = x.view(b, t, cos.shape[1], 2, -1).transpose(1, 2)  # (B, H, T, 2, head_dim/2)
        x1, x2 = halves[..., 0, :], halves[..., 1, :]
        out = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-2)
        return out.transpose(1, 2).reshape(b, t, -1)
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos + rotated * sin


class SelfAttention(nn.Module):
    """Multi-head self-attention with q/k RMSNorm over the full width, 1-D RoPE and an optional per-head gate
    2 sigmoid(to_gate_logits(x)) (zero-initialised gates are the identity)."""

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__()
        width = config.width
        self.heads, self.rope_type = config.heads, config.rope_type
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.q_norm = nn.RMSNorm(width, eps=NORM_EPS)
        self.k_norm = nn.RMSNorm(width, eps=NORM_EPS)
        self.to_gate_logits = nn.Linear(width, config.heads) if config.gated_attention else None
        self.to_out = nn.ModuleList([nn.Linear(width, width)])  # `to_out.0` in the released keys

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], bias: Tensor | None) -> Tensor:
        b, t, width = x.shape
        q = apply_rope_1d(self.q_norm(self.to_q(x)), rope, self.rope_type)
        k = apply_rope_1d(self.k_norm(self.to_k(x)), rope, self.rope_type)
        v = self.to_v(x)
        q, k, v = (y.view(b, t, self.heads, -1).transpose(1, 2) for y in (q, k, v))  # (B, H, T, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2)  # (B, T, H, head_dim)
        if self.to_gate_logits is not None:
            out = out * (2.0 * torch.sigmoid(self.to_gate_logits(x)))[..., None]
        return self.to_out[0](out.reshape(b, t, width))


class FeedForward(nn.Module):
    """Linear -> GELU(tanh) -> Linear at 4x width; `net.0.proj` and `net.2` in the released keys."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([nn.Module(), nn.Identity(), nn.Linear(4 * width, width)])
        self.net[0].proj = nn.Linear(width, 4 * width)

    def forward(self, x: Tensor) -> Tensor:
        return self.net[2](F.gelu(self.net[0].proj(x), approximate="tanh"))


class ConnectorBlock(nn.Module):
    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__()
        self.attn1 = SelfAttention(config)
        self.ff = FeedForward(config.width)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], bias: Tensor | None) -> Tensor:
        x = x + self.attn1(rms_norm(x), rope, bias)
        return x + self.ff(rms_norm(x))


class EmbeddingsConnector(nn.Module):
    """features [B, T, width] with mask [B, T] (real tokens anywhere, usually left- or right-padded)
    -> context [B, length, width] and its mask [B, length] bool.

    With registers, the real tokens move to positions 0..n-1 and the registers fill n..length-1
    (register p mod R at position p), so the mask is all True; `length` must be a multiple of R.
    Without registers the padding stays in place and is masked in attention and zeroed in the output.
    """

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer_1d_blocks = nn.ModuleList(ConnectorBlock(config) for _ in range(config.layers))
        if config.registers:
            self.learnable_registers = nn.Parameter(torch.rand(config.registers, config.width) * 2.0 - 1.0)

    def forward(self, features: Tensor, mask: Tensor, length: int | None = None) -> tuple[Tensor, Tensor]:
        mask = mask.bool()
        bias = None
        if self.config.registers:
            features, mask = self._fill_with_registers(features, mask, length or features.shape[1])
        else:
            bias = torch.zeros(mask.shape, dtype=features.dtype, device=features.device)
            bias = bias.masked_fill(~mask, torch.finfo(features.dtype).min)[:, None, None, :]
        rope = rope_1d(features.shape[1], self.config, features.device, features.dtype)
        x = features
        for block in self.transformer_1d_blocks:
            x = block(x, rope, bias)
        return rms_norm(x) * mask[..., None].to(x.dtype), mask

    def _fill_with_registers(self, features: Tensor, mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
        r = self.config.registers
        if length % r:
            raise ConnectorConfigError(
                f"the context length {length} is not a multiple of the connector's {r} registers; LTX-2 uses "
                f"1024 tokens (a multiple of 128)"
            )
        counts = mask.sum(dim=1)
        if int(counts.max()) > length:
            raise ConnectorConfigError(f"a prompt of {int(counts.max())} tokens does not fit a context of {length}")
        b = features.shape[0]
        registers = self.learnable_registers.to(features.dtype).repeat(length // r, 1)  # (length, width)
        out = registers.unsqueeze(0).repeat(b, 1, 1)
        for i in range(b):  # a few prompts per call; the real tokens keep their order
            n = int(counts[i])
            out[i, :n] = features[i][mask[i]]
        return out, torch.ones(b, length, dtype=torch.bool, device=features.device)


class TextConnector(nn.Module):
    """Gemma's hidden states -> LTX-2's context: feature extractor, then embeddings connector.

    `forward(states, mask, length)`: num_layers + 1 states [B, T, gemma_dim], mask [B, T] bool ->
    context [B, length, width], mask [B, length] bool (all True with registers).
    """

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_extractor = FeatureExtractor(config)
        self.video_connector = EmbeddingsConnector(config)

    def forward(self, states: tuple[Tensor, ...] | Tensor, mask: Tensor, length: int | None = None) -> tuple[Tensor, Tensor]:
        features = self.feature_extractor(states, mask)
        return self.video_connector(features, mask, length)
