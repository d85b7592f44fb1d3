"""The peak of live tensor bytes a computation allocates, found by running it on meta tensors (shapes only).

Running a module's own forward on the meta device at the real config and clip size allocates nothing, yet every
operation still produces its output tensor and Python still frees each one when its last reference goes. Counting
those outputs as they appear and disappear gives the peak of live bytes the same code reaches on a real device,
without a formula to keep in step with the code: on the CPU it equals torch.profiler's measured peak to the byte
(tests/ltx2/test_ltx2_memory.py). Views share their base's storage and count once; in-place results count nothing.

Attention: on meta tensors `scaled_dot_product_attention` takes its math path, which materialises the N x N
scores; a GPU runs a fused kernel (flash or memory-efficient) that keeps only the output and the log-sum-exp per
query. `fused_attention=True` counts the fused kernel's tensors instead.

Kernels' own scratch memory is not counted (cuDNN's convolution workspace, cuBLAS's), except, with
`conv_scratch`, the CPU's for 3-D convolutions: slow_conv3d unfolds one sample's input into columns of
(input channels x kernel volume) x output positions while it computes, which a GPU does not.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _LiveBytes(TorchDispatchMode):
    """Counts the storages of op outputs while a tensor holds them; `peak` is the most alive at once."""

    def __init__(self, conv_scratch: bool = False) -> None:
        super().__init__()
        self.conv_scratch = conv_scratch
        self.storages: dict[int, list[int]] = {}  # storage id -> [bytes, tensors holding it]
        self.live = 0
        self.peak = 0
        self.largest = 0  # the largest single storage

    def _hold(self, t: torch.Tensor, outside: set[int]) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        entry = self.storages.get(key)
        if entry is None and key in outside:
            return  # a view of a tensor made before (a weight, an input): nothing new
        if entry is None:
            entry = self.storages[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
            self.largest = max(self.largest, entry[0])
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.storages.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self.storages[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.conv_scratch and func is torch.ops.aten.convolution.default and out.ndim == 5:
            weight = args[1]  # [out, in / groups, kt, kh, kw]
            columns = weight[0].numel() * out[0, 0].numel() * out.element_size()
            self.peak = max(self.peak, self.live + out.untyped_storage().nbytes() + columns)
        given = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        inputs = {id(a) for a in given}
        outside = {a.untyped_storage()._cdata for a in given} - set(self.storages)
        seen = set()
        for t in tree_flatten(out)[0]:
            # an in-place op returns its input: already held
            if isinstance(t, torch.Tensor) and id(t) not in seen and id(t) not in inputs:
                seen.add(id(t))
                self._hold(t, outside)
        return out


class _FusedKernel(torch.autograd.Function):
    """A fused attention kernel's tensors: forward keeps the output and a float32 log-sum-exp per query for its
    backward, which makes the three input gradients."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = q.new_empty((*q.shape[:-1], v.shape[-1]))
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _, _ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


class _FusedAttention(TorchFunctionMode):
    """scaled_dot_product_attention as a fused kernel (flash or memory-efficient), in training too."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            with torch._C.DisableTorchFunction():
                return _FusedKernel.apply(*args[:3])
        return func(*args, **kwargs)


def traced_peak(fn: Callable[[], Any], fused_attention: bool = True, conv_scratch: bool = False,
                grad: bool = False) -> int:
    """Peak bytes of the tensors fn() allocates (on meta tensors), above what exists before it runs.

    fn builds nothing it does not compute: the module and inputs are made beforehand, on the meta device. grad: fn
    runs with autograd on (a training step: its forward and its `backward()`, whose saved tensors count too)."""
    return traced_peaks(fn, fused_attention, conv_scratch, grad)[0]


def traced_peaks(fn: Callable[[], Any], fused_attention: bool = True, conv_scratch: bool = False,
                 grad: bool = False) -> tuple[int, int]:
    """(peak bytes, bytes of the largest single tensor) of what fn() allocates on meta tensors; conv_scratch: with
    the CPU's 3-D convolution columns."""
    counter = _LiveBytes(conv_scratch)
    with torch.set_grad_enabled(grad):
        if fused_attention:
            with _FusedAttention(), counter:
                out = fn()
        else:
            with counter:
                out = fn()
    del out
    return counter.peak, counter.largest
