"""fp8 (e4m3fn) weight storage with a float32 scale per tensor or per square block, upcast per layer.

A weight W [out, in] is stored as q = round_fp8(W / s) with s = amax / 448 (e4m3fn's largest finite
value), so the largest entry lands on the top of the fp8 range; with `block_size` b, s is one value per
b x b block ([ceil(out/b), ceil(in/b)]), as musubi-tuner's `--fp8_scaled` and DeepSeek-V3 do, which
keeps blocks of small weights from losing their precision to one large outlier.
Only 2-D `*.weight` tensors (the Linear layers) are quantised; biases, norms and convs stay as they are.

fp8 files (save_fp8_file, load_fp8_file, quantize_state_dict) are research/fp8_files.py in the repository, not
installed; for one release their names still answer here from a clone, with a DeprecationWarning (module
`__getattr__`).
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max  # 448


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


_MOVED = ("save_fp8_file", "load_fp8_file", "quantize_state_dict")


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        files = importlib.import_module("research.fp8_files")
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("research"):
            raise
        raise ImportError(f"aiprod_core.memory.fp8.{name} moved out of the installed package to research/fp8_files.py "
                          "in the repository; from a clone's root, import it from research.fp8_files") from e
    warnings.warn(f"aiprod_core.memory.fp8.{name} moved to research.fp8_files.{name} (research/ in the repository, "
                  "not installed); import it from there", DeprecationWarning, stacklevel=2)
    return getattr(files, name)
