"""ComfyUI's single-file umT5 (`kind="umt5_comfy"`): the `umt5_xxl_*.safetensors` in `models/text_encoders`.

Layout, as ComfyUI reads it (comfy/text_encoders/t5.py, wan.py, sd.py):
- HF T5 encoder keys: `shared.weight`, `encoder.block.N.layer.0.SelfAttention.{q,k,v,o}.weight`,
  `...layer.0.SelfAttention.relative_attention_bias.weight` (in every block for umT5, block 0 only for
  T5), `...layer.0.layer_norm.weight`, `...layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight`,
  `...layer.1.layer_norm.weight`, `encoder.final_layer_norm.weight`;
- the tokenizer as the uint8 tensor `spiece_model` (the bytes of a sentencepiece `.model`);
- fp8 files (`*_fp8_e4m3fn_scaled`): linear weights in float8 with a float32 `<layer>.scale_weight`
  beside each (real weight = fp8 weight * scale, comfy/ops.py `scaled_fp8_ops`) and an empty tensor
  `scaled_fp8` whose dtype marks the format. We dequantise on load.
The architecture is read from the tensor shapes, since these files carry no config.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, check_safetensors
from .base import TextEncoder, TextEncoderError, check_width
from .t5 import default_dtype, file_identity
from .tokenizer import SentencePieceTokenizer

logger = logging.getLogger(__name__)

_FP8_DTYPES = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n))
_ANCHOR = "encoder.final_layer_norm.weight"
_REQUIRED = (
    "encoder.block.0.layer.0.SelfAttention.q.weight",
    "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    "encoder.block.0.layer.1.DenseReluDense.wo.weight",
    _ANCHOR,
)
_EXPECTED_HINT = (
    "expected a T5/umT5 encoder with keys like 'shared.weight', "
    "'encoder.block.0.layer.0.SelfAttention.q.weight', "
    "'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight', "
    "'encoder.final_layer_norm.weight' and the tokenizer tensor 'spiece_model' "
    "(e.g. umt5_xxl_fp8_e4m3fn_scaled.safetensors or umt5_xxl_fp16.safetensors from ComfyUI's models/text_encoders)"
)


def _open(path: Path):
    from safetensors import safe_open

    if not path.exists():
        raise TextEncoderError(
            f"text encoder file {str(path)!r} does not exist; kind='umt5_comfy' expects a file"
        )
    try:  # decided by the content: a pickle is refused whatever its name, a safetensors file read whatever its name
        check_safetensors(path, "text encoder")
    except CheckpointError as e:
        raise TextEncoderError(f"{e}. {_EXPECTED_HINT}") from e
    try:
        return safe_open(str(path), framework="pt")
    except Exception as e:  # safetensors raises its own SafetensorError for a bad header
        raise TextEncoderError(
            f"{path.name} is not a readable safetensors file ({e}); {_EXPECTED_HINT}"
        ) from e


def _find_prefix(path: Path, keys: list[str]) -> str:
    """The key prefix of the encoder ('' for ComfyUI's text_encoders files; e.g. 'text_encoders.x.' otherwise)."""
    prefixes = sorted(
        (
            k[: -len(_ANCHOR)]
            for k in keys
            if k.endswith(_ANCHOR) and (k == _ANCHOR or k[-len(_ANCHOR) - 1] == ".")
        ),
        key=len,
    )
    prefix = prefixes[0] if prefixes else ""
    missing = [k for k in _REQUIRED if prefix + k not in keys]
    if not any(prefix + k in keys for k in ("shared.weight", "encoder.embed_tokens.weight")):
        missing.insert(0, "shared.weight")
    if missing:
        raise TextEncoderError(
            f"{path.name} is not a T5/umT5 text encoder: missing {missing}; found {len(keys)} keys such as "
            f"{sorted(keys)[:6]}. {_EXPECTED_HINT}"
        )
    return prefix


def comfy_t5_config(path: str | os.PathLike):
    """Read a ComfyUI single-file T5/umT5 and return its transformers config (UMT5Config or T5Config),
    derived from the tensor shapes: vocab and d_model from `shared`, heads and buckets from
    `relative_attention_bias` [buckets, heads], d_kv = q rows / heads, d_ff from `wi_0`/`wi`."""
    path = Path(path)
    with _open(path) as f:
        keys = list(f.keys())
        prefix = _find_prefix(path, keys)
        return _config_from_shapes(f, keys, prefix)


def _config_from_shapes(f, keys: list[str], prefix: str):
    from transformers import T5Config, UMT5Config

    def shape(k: str) -> list[int]:
        return list(f.get_slice(prefix + k).get_shape())

    emb = "shared.weight" if prefix + "shared.weight" in keys else "encoder.embed_tokens.weight"
    vocab_size, d_model = shape(emb)
    blocks = sorted(
        {int(m.group(1)) for k in keys if (m := re.match(re.escape(prefix) + r"encoder\.block\.(\d+)\.", k))}
    )
    num_layers = len(blocks)
    if blocks != list(range(num_layers)):
        raise TextEncoderError(f"encoder blocks are not numbered 0..{num_layers - 1}: found {blocks[:8]}...")
    bias = "encoder.block.{}.layer.0.SelfAttention.relative_attention_bias.weight"
    per_layer_bias = all(prefix + bias.format(i) in keys for i in range(num_layers))
    num_buckets, num_heads = shape(bias.format(0))
    inner = shape("encoder.block.0.layer.0.SelfAttention.q.weight")[0]
    if inner % num_heads:
        raise TextEncoderError(
            f"attention width {inner} is not divisible by {num_heads} heads (from relative_attention_bias)"
        )
    ff = "encoder.block.0.layer.1.DenseReluDense."
    gated = prefix + ff + "wi_0.weight" in keys
    d_ff = shape(ff + ("wi_0.weight" if gated else "wi.weight"))[0]
    cls = UMT5Config if per_layer_bias else T5Config
    return cls(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=inner // num_heads,
        num_heads=num_heads,
        num_layers=num_layers,
        d_ff=d_ff,
        relative_attention_num_buckets=num_buckets,
        relative_attention_max_distance=128,  # not stored; 128 in T5, umT5 and ComfyUI
        feed_forward_proj="gated-gelu" if gated else "relu",
        layer_norm_epsilon=1e-6,
        dropout_rate=0.0,
        is_encoder_decoder=False,
        use_cache=False,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
    )


def _dequantise(f, name: str, keys: set[str], device, dtype: torch.dtype) -> torch.Tensor:
    t = f.get_tensor(name).to(device)
    if t.dtype in _FP8_DTYPES:
        scale_key = name[: -len("weight")] + "scale_weight"
        t = t.float()
        if scale_key in keys:
            t = t * f.get_tensor(scale_key).to(device=device, dtype=torch.float32)
        # ComfyUI also nan_to_num's fp8 T5 embeddings: an fp8 NaN code must not poison the states.
        t = torch.nan_to_num(t)
    return t.to(dtype)


def load_comfy_umt5(
    path: str | os.PathLike,
    max_length: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    expected_dim: int | None = None,
) -> TextEncoder:
    """Load a ComfyUI single-file umT5 (or T5) encoder with its embedded tokenizer.

    `encode` -> hidden `[B, L, d_model]` float32 (4096 for umT5-xxl), mask `[B, L]` bool.
    `expected_dim`, when given, is checked against the file's d_model before the weights are read.
    """
    from transformers import T5EncoderModel, UMT5Config, UMT5EncoderModel

    path = Path(path)
    dtype = dtype or default_dtype(device)
    with _open(path) as f:
        keys = list(f.keys())
        key_set = set(keys)
        prefix = _find_prefix(path, keys)
        config = _config_from_shapes(f, keys, prefix)
        check_width(path.name, config.d_model, expected_dim)
        spiece = next((k for k in ("spiece_model", prefix + "spiece_model") if k in key_set), None)
        if spiece is None:
            raise TextEncoderError(
                f"{path.name} has T5 encoder weights but no 'spiece_model' tensor, so its tokenizer is "
                "unknown; ComfyUI's umt5_xxl_*.safetensors files embed it. Use such a file, or a Hugging "
                "Face folder with kind='t5'"
            )
        tokenizer = SentencePieceTokenizer(
            f.get_tensor(spiece).numpy().tobytes(), source=f"{path.name}:spiece_model"
        )
        if tokenizer.vocab_size > config.vocab_size:
            raise TextEncoderError(
                f"{path.name}: the tokenizer has {tokenizer.vocab_size} pieces but the embedding has "
                f"{config.vocab_size} rows; the spiece_model does not belong to these weights"
            )
        if prefix + "scaled_fp8" in key_set:
            logger.info("%s: scaled fp8 weights, dequantising to %s", path.name, dtype)

        cls = UMT5EncoderModel if isinstance(config, UMT5Config) else T5EncoderModel
        with torch.device("meta"):
            model = cls(config)
        emb = prefix + (
            "shared.weight" if prefix + "shared.weight" in key_set else "encoder.embed_tokens.weight"
        )
        state = {}
        for name in model.state_dict():
            src = emb if name in ("shared.weight", "encoder.embed_tokens.weight") else prefix + name
            if src not in key_set:
                raise TextEncoderError(
                    f"{path.name} lacks {src!r}, which a {cls.__name__} with {config.num_layers} layers needs; "
                    f"the file is incomplete or not a T5 encoder. {_EXPECTED_HINT}"
                )
            if name != "encoder.embed_tokens.weight":
                state[name] = _dequantise(f, src, key_set, device, dtype)
    state["encoder.embed_tokens.weight"] = state["shared.weight"]
    model.load_state_dict(state, assign=True)
    # assign=True gives each module its own Parameter; re-tie so the embedding is one tensor.
    model.encoder.embed_tokens.weight = model.shared.weight
    model.eval()
    logger.info(
        "loaded %s from %s (d_model=%d, layers=%d, heads=%d)",
        cls.__name__,
        path.name,
        config.d_model,
        config.num_layers,
        config.num_heads,
    )
    return TextEncoder(
        model, tokenizer, kind="umt5_comfy", max_length=max_length, source_id=file_identity([path])
    )
