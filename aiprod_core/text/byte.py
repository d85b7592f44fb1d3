"""Byte-level encoder for `TextEncoderConfig(kind="byte")`: ByT5's tokenization and a small T5 encoder.

ByT5 (Xue et al. 2022, arXiv 2105.13626) reads UTF-8 bytes: ids 0-2 are <pad>, </s>, <unk>, bytes are
3..258, and the vocabulary is padded to 384 with sentinel ids. No vocabulary file is needed, so every
language works out of the box and the weights live in our own checkpoint (prefix `text_encoder.`).
"""

from __future__ import annotations

import logging

import torch

from ..config import ConfigError, TextEncoderConfig
from .base import TextEncoder, TextEncoderError
from .t5_encoder import T5Encoder, T5EncoderConfig
from .tokenizer import ByteTokenizer

logger = logging.getLogger(__name__)

BYT5_VOCAB_SIZE = ByteTokenizer.vocab_size


def byte_t5_config(cfg: TextEncoderConfig) -> T5EncoderConfig:
    """The T5 encoder of the byte model described by `cfg` (gated-GELU, as T5 v1.1/ByT5)."""
    if cfg.dim % cfg.heads:
        raise ConfigError(
            f"text.dim={cfg.dim} is not divisible by text.heads={cfg.heads}; the byte encoder's head "
            f"width is dim / heads, e.g. use heads={_divisor_near(cfg.dim, cfg.heads)}"
        )
    return T5EncoderConfig(vocab_size=BYT5_VOCAB_SIZE, d_model=cfg.dim, d_kv=cfg.dim // cfg.heads,
                           num_heads=cfg.heads, num_layers=cfg.layers, d_ff=cfg.ff_dim)


def _t5_init(c: T5EncoderConfig) -> dict[str, torch.Tensor]:
    """Random weights drawn as transformers' T5EncoderModel draws them (T5's initialisation, the same random
    numbers), so a seeded run from scratch starts where it always has; only training from scratch needs it."""
    from transformers import T5Config, T5EncoderModel

    hf = T5EncoderModel(T5Config(
        vocab_size=c.vocab_size, d_model=c.d_model, d_kv=c.d_kv, num_heads=c.num_heads, num_layers=c.num_layers,
        d_ff=c.d_ff, feed_forward_proj="gated-gelu", dropout_rate=0.0, is_encoder_decoder=False, use_cache=False,
        tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
    ))
    return hf.state_dict()


def _divisor_near(n: int, k: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - k))


class ByteTextEncoder(TextEncoder):
    """ByT5 tokenization + a randomly initialised T5 encoder built from `cfg`.

    `encode(prompts)` -> hidden `[B, L, cfg.dim]` float32, mask `[B, L]` bool, L <= cfg.max_length
    bytes (EOS included). `state_dict()` keys are `model.<HF T5 encoder key>`, e.g.
    `model.encoder.block.0.layer.0.SelfAttention.q.weight`, and hold each tensor once.
    """

    def __init__(self, cfg: TextEncoderConfig, init: bool = True) -> None:
        """init=False keeps PyTorch's default init (drawn apart from the seeded stream), for a state dict to
        overwrite; init=True draws transformers' T5 initialisation from the seeded stream."""
        if cfg.kind != "byte":
            raise ConfigError(f"ByteTextEncoder takes text.kind='byte'; got {cfg.kind!r}")
        cfg.validate()
        with torch.random.fork_rng(devices=[]):  # its default init is overwritten: leave the seeded stream alone
            model = T5Encoder(byte_t5_config(cfg))
        if init:
            model.load_state_dict(_t5_init(model.config))
        super().__init__(model, ByteTokenizer(), kind="byte", max_length=cfg.max_length)
        self.cfg = cfg


def load_byte_encoder(
    cfg: TextEncoderConfig,
    state_dict: dict[str, torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ByteTextEncoder:
    """Build the byte encoder and load `state_dict` (keys as `ByteTextEncoder.state_dict()`; a leading
    `text_encoder.` is accepted). Without a state dict the weights are random, for training from scratch."""
    encoder = ByteTextEncoder(cfg, init=not state_dict)
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
