"""How many parameters a text encoder has, without loading its weights: for the memory planner and `aiprod info`."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors import safe_open

from ..config import TextEncoderConfig
from .byte import ByteTextEncoder

UMT5_VOCAB = 256384  # umT5's sentencepiece vocabulary, for counting an encoder described only by its config


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def text_encoder_param_count(cfg: TextEncoderConfig) -> int:
    """Parameters of the text encoder: from its file when there is one, else from its config."""
    if cfg.kind == "byte":
        # small by design: built on the CPU without T5's init (random ops on the meta device, and transformers'
        # init, each import about a second of modules)
        return _params(ByteTextEncoder(cfg, init=False))
    files = sorted(Path(cfg.path).glob("*.safetensors")) if cfg.path and Path(cfg.path).is_dir() else [Path(cfg.path)]
    if cfg.path and all(f.is_file() for f in files) and files:
        total = 0
        for f in files:
            with safe_open(str(f), framework="pt") as h:
                total += sum(math.prod(h.get_slice(k).get_shape()) for k in h.keys() if k != "spiece_model")  # noqa: SIM118
        return total
    # transformers only for an encoder that has no file yet: importing it takes seconds
    from transformers import UMT5Config, UMT5EncoderModel

    t5 = UMT5Config(
        vocab_size=UMT5_VOCAB, d_model=cfg.dim, d_kv=cfg.dim // cfg.heads, d_ff=cfg.ff_dim,
        num_layers=cfg.layers, num_heads=cfg.heads, feed_forward_proj="gated-gelu",
    )
    with torch.device("meta"):
        return _params(UMT5EncoderModel(t5))
