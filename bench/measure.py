"""Measured peak memory of a call: the CUDA allocator's peak on a GPU, live tensor bytes on the CPU.

On the CPU the peak comes from torch.profiler's allocation events (every allocation and free of the
CPU allocator, in time order, workspaces included), so it is a measurement, not a count of our own
tensors. Only memory allocated during the call counts: weights and inputs that exist before are the
baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

# the matrix products: on a CPU without native bf16 (no AVX512-BF16, no AMX), oneDNN computes a bf16 product into a
# float32 scratchpad the size of its output, allocated and freed inside the call; cuBLAS on a GPU writes bf16 directly
MATMUL_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"})


def profiler_peak(prof, matmul_scratch: bool = True) -> int:
    """Peak of live CPU allocator bytes during a torch.profiler region (profile_memory=True), from its
    allocation and free events in time order.

    matmul_scratch=False leaves out memory a matrix product allocates and frees within its own call (the
    kernel's scratchpad, see MATMUL_OPS): what a plan of GPU memory does not count. Its output and everything
    that outlives the call still count."""
    from torch._C._profiler import _EventType

    events = []  # (time, bytes, address, the op that allocated or freed it)
    stack = [(e, None) for e in prof.profiler.kineto_results.experimental_event_tree()]
    while stack:
        e, op = stack.pop()
        if e.tag == _EventType.Allocation:
            if e.extra_fields.device.type == "cpu":
                events.append((e.start_time_ns, e.extra_fields.alloc_size, e.extra_fields.ptr, op))
            continue
        stack.extend((c, (e.name, e.start_time_ns)) for c in e.children)
    events.sort(key=lambda a: a[:2])
    scratch: set[int] = set()
    if not matmul_scratch:
        made: dict[int, tuple[int, tuple | None]] = {}  # address -> (event index, op) of its live allocation
        for i, (_, size, ptr, op) in enumerate(events):
            if size > 0:
                made[ptr] = (i, op)
                continue
            j, made_by = made.pop(ptr, (None, None))
            if j is not None and op is not None and op == made_by and op[0] in MATMUL_OPS:
                scratch.update((i, j))
    live = peak = 0
    for i, (_, size, _, _) in enumerate(events):
        if i not in scratch:
            live += size
            peak = max(peak, live)
    return peak


def measure_peak(fn: Callable[[], Any], device: torch.device | str = "cpu", matmul_scratch: bool = True) -> tuple[Any, int]:
    """Run fn(); return (its result, peak bytes allocated during it above what was allocated before).

    matmul_scratch=False (CPU only): without the scratchpads matrix products allocate and free inside their own
    call, which a CPU without native bf16 makes as float32 copies of a bf16 product's output and a GPU does not;
    the peak to hold a GPU memory plan against. On a GPU cuBLAS's workspace is allocated once, outside the call."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        return out, torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    return out, profiler_peak(prof, matmul_scratch)
