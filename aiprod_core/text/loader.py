"""`load_text_encoder`: one entry that turns a `TextEncoderConfig` into a `TextEncoder`."""

from __future__ import annotations

import torch

from ..config import TextEncoderConfig
from .base import TextEncoder, TextEncoderError


def load_text_encoder(
    cfg: TextEncoderConfig,
    state_dict: dict[str, torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> TextEncoder:
    """Build the encoder `cfg.kind` names.

    - `byte`: from `state_dict` (the `text_encoder.` part of our checkpoint; random init when None).
    - `t5`: from the Hugging Face folder `cfg.path`.
    - `umt5_comfy`: from ComfyUI's single file `cfg.path`.
    `dtype` None means float32 for `byte` and on CPU, bfloat16 for external encoders on an accelerator.
    The encoder's width must equal `cfg.dim`, the width the backbone's caption projection takes.
    """
    cfg.validate()
    if cfg.kind == "byte":
        from .byte import load_byte_encoder

        return load_byte_encoder(cfg, state_dict, device=device, dtype=dtype or torch.float32)
    if state_dict:
        raise TextEncoderError(
            f"a state dict ({len(state_dict)} tensors) was given for text.kind={cfg.kind!r}, whose weights "
            f"are read from text.path={cfg.path!r}; only kind='byte' is stored in our checkpoint"
        )
    if not cfg.path:
        raise TextEncoderError(
            f"text.kind={cfg.kind!r} needs text.path: "
            + (
                "a Hugging Face folder (config.json, *.safetensors, tokenizer)"
                if cfg.kind == "t5"
                else "a ComfyUI umt5_xxl_*.safetensors file"
            )
        )
    if cfg.kind == "t5":
        from .t5 import load_hf_t5_encoder

        return load_hf_t5_encoder(cfg.path, cfg.max_length, device=device, dtype=dtype, expected_dim=cfg.dim)
    from .comfy_umt5 import load_comfy_umt5

    return load_comfy_umt5(cfg.path, cfg.max_length, device=device, dtype=dtype, expected_dim=cfg.dim)
