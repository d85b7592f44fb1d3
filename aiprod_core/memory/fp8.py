"""fp8 (e4m3fn) weight storage with a float32 scale per tensor or per square block, upcast per layer.

A weight W [out, in] is stored as q = round_fp8(W / s) with s = amax / 448 (e4m3fn's largest finite
value), so the largest entry lands on the top of the fp8 range; with `block_size` b, s is one value per
b x b block ([ceil(out/b), ceil(in/b)]), as musubi-tuner's `--fp8_scaled` and DeepSeek-V3 do, which
keeps blocks of small weights from losing their precision to one large outlier.

Files: the fp8 tensor under its own key and its scale beside it under `<layer>.scale_weight`
(ComfyUI's scaled-fp8 naming); `aiprod.fp8_block` in the metadata gives the block size (0 = per
tensor). `load_fp8_file` returns the fp8 tensors as they are (`Fp8Tensor`), not dequantised.
Only 2-D `*.weight` tensors (the Linear layers) are quantised; biases, norms and convs stay as they are.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checkpoint import read_safetensors, save_safetensors_atomic

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max  # 448
_META_BLOCK = "aiprod.fp8_block"


@dataclass
class Fp8Tensor:
    """A weight in fp8 storage: `data` [*shape] float8_e4m3fn and `scale` float32, [] or [R, C] blocks."""

    data: Tensor
    scale: Tensor
    block_size: int = 0

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size() + self.scale.numel() * self.scale.element_size()

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Fp8Tensor:
        return Fp8Tensor(
            self.data.to(device, non_blocking=non_blocking), self.scale.to(device, non_blocking=non_blocking), self.block_size
        )

    def pin_memory(self) -> Fp8Tensor:
        return Fp8Tensor(self.data.pin_memory(), self.scale.pin_memory(), self.block_size)

    def record_stream(self, stream) -> None:
        self.data.record_stream(stream)
        self.scale.record_stream(stream)

    def dequantize(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The weight in `dtype` [*shape]: q * s, with s expanded over its blocks."""
        w = self.data.to(dtype)
        if self.block_size == 0:
            return w * self.scale.to(dtype)
        b = self.block_size
        r, c = w.shape
        s = self.scale.to(dtype).repeat_interleave(b, 0)[:r].repeat_interleave(b, 1)[:, :c]
        return w * s


def quantize_fp8(t: Tensor, block_size: int = 0) -> Fp8Tensor:
    """t [*] (block scale: [out, in]) -> Fp8Tensor; scales in float32, zero blocks get scale 1."""
    if block_size < 0:
        raise ValueError(f"block_size={block_size} must be >= 0 (0 = one scale per tensor)")
    x = t.detach().float()
    if block_size == 0:
        amax = x.abs().max() if x.numel() else torch.zeros(())
        scale = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
        return Fp8Tensor((x / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale.float(), 0)
    if x.ndim != 2:
        raise ValueError(f"block scales need a 2-D weight [out, in]; got shape {tuple(x.shape)}; use block_size=0")
    b = block_size
    r, c = x.shape
    rb, cb = math.ceil(r / b), math.ceil(c / b)
    padded = torch.nn.functional.pad(x, (0, cb * b - c, 0, rb * b - r))
    amax = padded.view(rb, b, cb, b).abs().amax(dim=(1, 3))  # (rb, cb)
    scale = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
    full = scale.repeat_interleave(b, 0)[:r].repeat_interleave(b, 1)[:, :c]
    return Fp8Tensor((x / full).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale, b)


def is_fp8_candidate(name: str, t: Tensor) -> bool:
    """Linear weights: 2-D tensors named `*.weight` (the bulk of a transformer's bytes)."""
    return name.endswith("weight") and t.ndim == 2 and t.is_floating_point()


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
