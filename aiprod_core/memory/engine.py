"""The pieces a Placement (placement.py) runs with: the compute device and precision, a module on the device only
while its stage runs, and out-of-memory errors that name the stage and what to lower.

offload modes: "none" (run where the modules are: the behaviour without this engine), "auto" (on a
CUDA device, follow the plan for the free memory or `vram_gb`; on the CPU the same as "none"),
"stream" (always stream the backbone's blocks, even when they would fit).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

import torch
from torch import nn

from .plan import GiB, MemoryPlan

OffloadMode = Literal["none", "auto", "stream"]
OFFLOAD_MODES = get_args(OffloadMode)
_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}

# what to lower when a stage runs out of memory anyway (another process took memory after planning)
_HINTS = {
    "text_encoding": "keep the text encoder on the CPU (offload='auto' with a lower vram_gb / --vram)",
    "sampling": "lower vram_gb (--vram) so more blocks stream, use offload='stream', weight_dtype='fp8', or fewer frames/pixels",
    "upscaling": "lower vram_gb (--vram) so more blocks stream, or skip --upscale",
    "vae_decode": "lower vram_gb (--vram) for smaller decode chunks and tiles, or pass temporal_chunk=1 and spatial_tile=8",
    "vae_encode": "encode fewer frames or smaller ones, or free the GPU of other models first",
    "lora_training": "lower vram_gb (--vram) so more blocks stream, use weight_dtype='fp8', a lower LoRA rank or a smaller clip",
}


_STAGE_NAMES = {"vae_decode": "VAE decode", "vae_encode": "VAE encode", "lora_training": "LoRA training", "text_encoding": "text encoding"}


class StageOutOfMemoryError(torch.OutOfMemoryError):
    """A stage ran out of device memory; the message names the stage and the option to lower. Still an
    out-of-memory error, so that hosts that free memory on one (ComfyUI unloads its models) still do."""


def check_offload(offload: str) -> None:
    if offload not in OFFLOAD_MODES:
        raise ValueError(f"offload={offload!r}; expected one of {OFFLOAD_MODES}")


def compute_device(offload: str, module: nn.Module | None = None) -> torch.device:
    """The module's device when it is already on an accelerator, else CUDA when offloading and present."""
    check_offload(offload)
    if module is not None:
        p = next(module.parameters(), None)
        if p is not None and p.device.type != "cpu":
            return p.device
    if offload != "none" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


PRECISIONS = ("auto", "bf16", "fp32")


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype the model's weights (or a training run's autocast) use on `device` for a precision setting.

    "auto": bf16 on a CUDA GPU that has it (half the weight memory and copy traffic of float32, what the
    planner assumes), float32 elsewhere: GPUs without bf16, and the CPU, where only CPUs with native bf16
    (avx512_bf16, AMX) gain from it. "bf16" asks for it anywhere it runs (the CPU included); "fp32" never.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; expected one of {PRECISIONS}")
    has_bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu"
    if precision == "bf16" and not has_bf16:
        raise ValueError(f"precision='bf16' but {device} has no bf16; use 'auto' or 'fp32'")
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda" and has_bf16)
    return torch.bfloat16 if use else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, "fp32")


def device_budget_gb(device: torch.device) -> float:
    """Memory this process may use on a CUDA device: what is free now plus what our allocator holds."""
    free, _total = torch.cuda.mem_get_info(device)
    return (free + torch.cuda.memory_reserved(device)) / GiB


@contextmanager
def stage_guard(stage: str, plan: MemoryPlan | None = None) -> Iterator[None]:
    """Turn an out-of-memory error inside a stage into a StageOutOfMemoryError naming it and the fix."""
    try:
        yield
    except StageOutOfMemoryError:
        raise  # an inner stage's, already named
    except torch.OutOfMemoryError as e:
        sp = plan.stages.get(stage) if plan is not None else None
        expected = (f" (the plan expected a peak of {sp.peak_bytes / GiB:.2f} GB inside {plan.usable_bytes / GiB:.2f} GB;"
                    " another process may be using the GPU)") if sp is not None and sp.where == "gpu" else ""
        name = _STAGE_NAMES.get(stage, stage.replace("_", " "))
        text = str(e).strip()
        # torch's message goes on about the allocator's state and its settings; the first sentence is what failed
        short = re.match(r"CUDA out of memory\. Tried to allocate [\d.]+ \w+", text)
        first = short.group(0) if short else text.splitlines()[0] if text else "out of memory"
        raise StageOutOfMemoryError(
            f"out of memory during {name}{expected}: {first}. To fit, {_HINTS.get(stage, 'lower vram_gb (--vram)')}"
        ) from None
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@contextmanager
def on_device(module: nn.Module | None, device: torch.device, parts: tuple[str, ...] | None = None) -> Iterator[None]:
    """`module` on `device` for the block, then back where it was (no-op on the same device).

    parts: only these child modules go, with the module's own buffers; a VAE decodes with its decoder and
    latent statistics ("decoder",), and the latent upscaler needs only the statistics (()), not the encoder too.
    """
    if module is None:
        yield
        return
    if parts is not None:
        # frozen for inference: afterwards the host tensors are put back, nothing is copied back
        mods = [module, *(m for name in parts for m in getattr(module, name).modules())]
        saved = [(m, dict(m._parameters), dict(m._buffers)) for m in mods]
        data = [(p, p.data) for _, params, _ in saved for p in params.values() if p is not None]  # .to() may swap .data
        try:
            module._buffers.update({n: b.to(device) for n, b in saved[0][2].items() if b is not None})
            for name in parts:
                getattr(module, name).to(device)
            yield
        finally:
            for p, d in data:
                p.data = d
            for m, params, buffers in saved:
                m._parameters.update(params)
                m._buffers.update(buffers)
        return
    p = next(module.parameters(), None)
    home = p.device if p is not None else device
    if home == device:
        yield
        return
    module.to(device)
    try:
        yield
    finally:
        module.to(home)


def __getattr__(name: str):
    """plan_for, training_plan and backbone_stage answer here for one release, each access with a DeprecationWarning:
    a Placement (memory/placement.py) now decides and applies what runs where. Looked up on access, so that this
    module, which the placement builds on, does not import it."""
    if name not in ("plan_for", "training_plan", "backbone_stage"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module("aiprod_core.memory.placement").old_engine_name(name)
