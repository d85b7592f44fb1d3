"""A training run's options, one small value per concern, each checked when it is made:

    TrainOptions(RunOptions("runs/star", seed=1),            # the run folder, its saves, validation, progress
                 lora=LoRAOptions(rank=8),                  # None: full training
                 placement=TrainPlacement(device="cuda"),   # device, offload, budget, precision, checkpointing
                 preservation=Preservation(("a red circle",)),
                 optimizer=OptimizerOptions())
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..memory.engine import OFFLOAD_MODES, PRECISIONS, OffloadMode
from ..models.lora import DEFAULT_TARGETS


@dataclass(frozen=True)
class RunOptions:
    """Where a run writes and how it reports: the folder, the result, saves, validation, progress, a stop."""

    out_dir: str | os.PathLike
    seed: int = 0
    name: str = "aiprod-v2-tiny"
    result_path: str | os.PathLike | None = None  # the final model or LoRA (default: out_dir/name.safetensors)
    checkpoint_every: int = 250  # global steps between training-state saves (0: at phase ends and on a stop only)
    log_every: int = 10
    stop_after: int | None = None  # stop (saving the state) after this many global steps: one sitting
    validate: bool = True  # clips for a few prompts at each phase end
    validation_steps: int = 20
    progress: bool = True
    on_step: Callable[[dict], None] | None = None  # called after every step with {global_step, phase, loss}

    def __post_init__(self):
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every={self.checkpoint_every}; expected a step count >= 0 (0: only at "
                             "phase ends and on a stop)")


@dataclass(frozen=True)
class LoRAOptions:
    """A LoRA on the frozen model: its rank, alpha (default: the rank) and the layers it adapts."""

    rank: int
    alpha: float | None = None
    targets: tuple[str, ...] = DEFAULT_TARGETS
    # the text encoder's linear layers adapted too (e.g. models.lora.TEXT_TARGETS), so that a new word can get a
    # meaning of its own; () keeps the text encoder frozen and its embeddings cached
    text_targets: tuple[str, ...] = ()

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"LoRA rank {self.rank}; expected 1 or more (no LoRA options at all: full training)")


@dataclass(frozen=True)
class TrainPlacement:
    """Where training runs and in what precision.

    device: None trains where the backbone is; else the model (and LoRA) moves there. offload, for a LoRA run on a
    GPU: "auto" keeps as many frozen blocks on it as the memory planner fits in `vram_gb` (None: what is free) for each
    phase's clips and batch and streams the rest from CPU memory; "stream" streams them all; "none" moves the model to
    `device`. Full training runs as "none", and so does "auto" on the CPU unless vram_gb is given (then the planned
    code path runs there, its copies no-ops, as "stream" does). precision: "auto" is bf16 autocast on CUDA GPUs that
    have bf16 and fp32 elsewhere; "bf16" also on the CPU (about 0.78x the step time on CPUs with native bf16); "fp32"
    never. gradient_checkpointing: None turns it on for CUDA (memory) and off on the CPU (speed).
    """

    device: str | None = None
    offload: OffloadMode = "none"
    vram_gb: float | None = None
    precision: str = "auto"
    gradient_checkpointing: bool | None = None

    def __post_init__(self):
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload={self.offload!r}; expected one of {', '.join(map(repr, OFFLOAD_MODES))}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; expected one of {PRECISIONS}")
        if self.vram_gb is not None and self.vram_gb <= 0:
            raise ValueError(f"vram_gb={self.vram_gb} must be positive (the GPU memory to plan for, in GiB)")


@dataclass(frozen=True)
class Preservation:
    """Output preservation for a LoRA run: its outputs for these prompts, on each step's noisy latents, are pulled to
    the base model's (it learns its subject without redrawing what these prompts show), with this loss weight."""

    prompts: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class OptimizerOptions:
    grad_clip: float = 1.0  # 0: no clipping
    weight_decay: float = 0.01


@dataclass(frozen=True)
class TrainOptions:
    """Everything a Trainer is told besides the model, the phases and the data."""

    run: RunOptions
    lora: LoRAOptions | None = None  # None: full training
    placement: TrainPlacement = field(default_factory=TrainPlacement)
    preservation: Preservation = field(default_factory=Preservation)
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)

    def __post_init__(self):
        if not isinstance(self.run, RunOptions):
            raise TypeError(f"TrainOptions takes a RunOptions first, got {type(self.run).__name__}; write "
                            "TrainOptions(RunOptions(out_dir, ...), lora=LoRAOptions(...), placement=TrainPlacement(...))")
        if self.lora is None and self.placement.offload == "stream":
            raise ValueError("offload='stream' streams frozen blocks, so it is for LoRA runs (set lora_rank); "
                             "full training updates every weight")
        if self.lora is None and self.preservation.prompts:
            raise ValueError("preservation prompts keep a LoRA's outputs near the base model's, so they are for "
                             "LoRA runs (set lora_rank); full training has no base model to keep")
