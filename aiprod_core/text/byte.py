"""Byte-level encoder for `TextEncoderConfig(kind="byte")`: ByT5's tokenizer and a small T5 encoder.

ByT5 (Xue et al. 2022, arXiv 2105.13626) reads UTF-8 bytes: ids 0-2 are <pad>, </s>, <unk>, bytes are
3..258, and the vocabulary is padded to 384 with sentinel ids. No vocabulary file is needed, so every
language works out of the box and the weights live in our own checkpoint (prefix `text_encoder.`).
"""

from __future__ import annotations

import logging

import torch

from ..config import ConfigError, TextEncoderConfig
from .base import TextEncoder, TextEncoderError
from .tokenizer import HFTokenizer

logger = logging.getLogger(__name__)

BYT5_VOCAB_SIZE = 384


def byte_t5_config(cfg: TextEncoderConfig):
    """The transformers `T5Config` of the byte encoder described by `cfg` (gated-GELU, as T5 v1.1/ByT5)."""
    from transformers import T5Config

    if cfg.dim % cfg.heads:
        raise ConfigError(
            f"text.dim={cfg.dim} is not divisible by text.heads={cfg.heads}; the byte encoder's head "
            f"width is dim / heads, e.g. use heads={_divisor_near(cfg.dim, cfg.heads)}"
        )
    return T5Config(
        vocab_size=BYT5_VOCAB_SIZE,
        d_model=cfg.dim,
        d_kv=cfg.dim // cfg.heads,
        num_heads=cfg.heads,
        num_layers=cfg.layers,
        d_ff=cfg.ff_dim,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,  # dropout is the trainer's choice, not a property of the stored weights
        is_encoder_decoder=False,
        use_cache=False,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
    )


def _divisor_near(n: int, k: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - k))


class ByteTextEncoder(TextEncoder):
    """ByT5 tokenizer + a randomly initialised `T5EncoderModel` built from `cfg`.

    `encode(prompts)` -> hidden `[B, L, cfg.dim]` float32, mask `[B, L]` bool, L <= cfg.max_length
    bytes (EOS included). `state_dict()` keys are `model.<HF T5 encoder key>`, e.g.
    `model.encoder.block.0.layer.0.SelfAttention.q.weight`, and hold each tensor once.
    """

    def __init__(self, cfg: TextEncoderConfig) -> None:
        from transformers import ByT5Tokenizer, T5EncoderModel

        if cfg.kind != "byte":
            raise ConfigError(f"ByteTextEncoder takes text.kind='byte'; got {cfg.kind!r}")
        cfg.validate()
        model = T5EncoderModel(byte_t5_config(cfg))
        super().__init__(model, HFTokenizer(ByT5Tokenizer()), kind="byte", max_length=cfg.max_length)
        self.cfg = cfg


def load_byte_encoder(
    cfg: TextEncoderConfig,
    state_dict: dict[str, torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ByteTextEncoder:
    """Build the byte encoder and load `state_dict` (keys as `ByteTextEncoder.state_dict()`; a leading
    `text_encoder.` is accepted). Without a state dict the weights are random, for training from scratch."""
    encoder = ByteTextEncoder(cfg)
    if state_dict:
        state_dict = _strip_prefix(state_dict, "text_encoder.")
        expected = set(encoder.state_dict())
        found = set(state_dict) - {"model.encoder.embed_tokens.weight"}
        missing, unexpected = sorted(expected - found), sorted(found - expected)
        if missing or unexpected:
            raise TextEncoderError(
                f"byte text-encoder state dict does not match text config {cfg}: missing {len(missing)} "
                f"keys {missing[:4]}, unexpected {len(unexpected)} keys {unexpected[:4]}; expected keys "
                "like 'model.encoder.block.0.layer.0.SelfAttention.q.weight'. Load the checkpoint with "
                "the config stored in its metadata"
            )
        own = encoder.state_dict()
        wrong = [
            f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
            for k, v in state_dict.items()
            if k in own and tuple(v.shape) != tuple(own[k].shape)
        ]
        if wrong:
            raise TextEncoderError(
                f"byte text-encoder weights have other shapes than text config {cfg} gives "
                f"(found vs expected): {wrong[:4]}; load the checkpoint with the config stored in its metadata"
            )
        encoder.load_state_dict(state_dict)
    else:
        logger.info(
            "byte text encoder: no weights given, random init (dim=%d, layers=%d)", cfg.dim, cfg.layers
        )
    return encoder.to(device=device, dtype=dtype).eval()


def _strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict
