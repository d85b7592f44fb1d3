"""fp8 weight files: a state dict with its Linear weights in fp8 (aiprod_core.memory.fp8's storage), written and read
back without dequantising. Only the tests use them; the pack streams fp8 weights it quantises itself.

Files: the fp8 tensor under its own key and its scale beside it under `<layer>.scale_weight`
(ComfyUI's scaled-fp8 naming); `aiprod.fp8_block` in the metadata gives the block size (0 = per
tensor). `load_fp8_file` returns the fp8 tensors as they are (`Fp8Tensor`), not dequantised, for
`stream_blocks(backbone, device, stored=...)`.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

from aiprod_core.checkpoint import read_safetensors, save_safetensors_atomic
from aiprod_core.memory.fp8 import Fp8Tensor, is_fp8_candidate, quantize_fp8

_META_BLOCK = "aiprod.fp8_block"


def _scale_key(name: str) -> str:
    return name[: -len("weight")] + "scale_weight"


def quantize_state_dict(state: dict[str, Tensor], block_size: int = 0) -> dict[str, Tensor | Fp8Tensor]:
    """Linear weights -> Fp8Tensor; everything else unchanged."""
    return {k: quantize_fp8(v, block_size) if is_fp8_candidate(k, v) else v for k, v in state.items()}


def save_fp8_file(
    path: str | os.PathLike, state: dict[str, Tensor | Fp8Tensor], block_size: int = 0, metadata: dict[str, str] | None = None
) -> None:
    """Write a state dict with fp8 Linear weights (quantising any that are not yet fp8), atomically."""
    out: dict[str, Tensor] = {}
    blocks = set()
    for k, v in state.items():
        if isinstance(v, Tensor) and is_fp8_candidate(k, v):
            v = quantize_fp8(v, block_size)
        if isinstance(v, Fp8Tensor):
            out[k], out[_scale_key(k)] = v.data, v.scale
            blocks.add(v.block_size)
        else:
            out[k] = v
    if len(blocks) > 1:
        raise ValueError(f"fp8 tensors with mixed block sizes {sorted(blocks)}; one file holds one block size")
    meta = {"format": "pt", _META_BLOCK: str(blocks.pop() if blocks else block_size), **(metadata or {})}
    save_safetensors_atomic(out, path, meta)


def load_fp8_file(path: str | os.PathLike) -> tuple[dict[str, Tensor | Fp8Tensor], dict[str, str]]:
    """A safetensors file with fp8 weights and `*.scale_weight` scales -> fp8 tensors kept as fp8.

    Also reads ComfyUI's scaled-fp8 files (scalar `scale_weight`); an fp8 tensor without a scale gets 1.
    """
    sd, meta = read_safetensors(path)
    block = int(meta.get(_META_BLOCK, "0"))
    out: dict[str, Tensor | Fp8Tensor] = {}
    for k, v in sd.items():
        if k.endswith("scale_weight") and k != "scale_weight" and k[: -len("scale_weight")] + "weight" in sd:
            continue
        if k == "scaled_fp8" and v.numel() == 0:  # ComfyUI's format marker
            continue
        if v.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            scale = sd.get(_scale_key(k), torch.ones(())).float()
            bs = block if scale.ndim == 2 else 0
            if bs and (math.ceil(v.shape[0] / bs), math.ceil(v.shape[1] / bs)) != tuple(scale.shape):
                raise ValueError(
                    f"{path}: {k} has shape {tuple(v.shape)} but its block scale has shape {tuple(scale.shape)}, "
                    f"which does not match the block size {bs} in the metadata; the file is damaged or from another tool"
                )
            out[k] = Fp8Tensor(v, scale, bs)  # e5m2 stays e5m2: converting could overflow e4m3fn
        else:
            out[k] = v
    return out, meta
