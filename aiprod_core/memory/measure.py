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


def profiler_peak(prof) -> int:
    """Peak of live CPU allocator bytes during a torch.profiler region (profile_memory=True), from its
    allocation and free events in time order."""
    from torch._C._profiler import _EventType

    allocs, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        e = stack.pop()
        if e.tag == _EventType.Allocation and e.extra_fields.device.type == "cpu":
            allocs.append((e.start_time_ns, e.extra_fields.alloc_size))
        stack.extend(e.children)
    live = peak = 0
    for _, size in sorted(allocs):
        live += size
        peak = max(peak, live)
    return peak


def measure_peak(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[Any, int]:
    """Run fn(); return (its result, peak bytes allocated during it above what was allocated before)."""
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
    return out, profiler_peak(prof)
