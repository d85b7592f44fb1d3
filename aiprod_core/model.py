"""VideoModel: every component of one model, built from one config; loading, and LoRAs applied while sampling."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_into
from .config import ModelConfig, preset
from .memory.engine import on_device
from .models.backbone import HybridBackbone
from .models.lora import LoRA, apply_loras, read_lora
from .models.upscaler import LatentUpscaler
from .models.vae import CausalVideoVAE
from .text import TextEncoder, load_text_encoder
from .text.lora import adapted_text_encoder

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "aiprod-v2-tiny.safetensors"


def default_model_path() -> Path | None:
    """The embedded default model shipped inside the package, if this install has it."""
    p = WEIGHTS_DIR / DEFAULT_MODEL
    return p if p.is_file() else None


@dataclass
class VideoModel:
    """All components of one model, built from one config."""

    config: ModelConfig
    backbone: HybridBackbone
    vae: CausalVideoVAE
    text_encoder: TextEncoder
    upscaler: LatentUpscaler | None
    source: str  # a file path, or "random init (preset NAME)"
    trained: bool
    loras: tuple[tuple[LoRA, float], ...] = field(default=())  # backbone adapters applied while sampling

    def with_text_loras(self, loras: list[tuple[LoRA | None, float]]) -> VideoModel:
        """The same model reading prompts through these LoRAs' text-encoder adapters (None, or strength 0:
        nothing to apply); every weight is shared, nothing is copied."""
        text_encoder = adapted_text_encoder(self.text_encoder, loras)
        return self if text_encoder is self.text_encoder else dataclasses.replace(self, text_encoder=text_encoder)

    def with_lora(self, lora: LoRA, strength: float = 1.0, text_lora: LoRA | None = None) -> VideoModel:
        """The same model with a LoRA: its backbone adapters apply while sampling, its text-encoder adapters
        (if any) while encoding prompts. Nothing is merged or copied, and LoRAs stack."""
        model = self.with_text_loras([(text_lora, strength)])
        return dataclasses.replace(model, loras=(*self.loras, (lora, strength))) if strength else model

    def with_lora_file(self, path: str | os.PathLike, strength: float = 1.0) -> VideoModel:
        """with_lora for a LoRA file written by the trainer (or any file in that layout)."""
        lora, text_lora = read_lora(path, self.backbone, self.text_encoder)
        return self.with_lora(lora, strength, text_lora)

    def loras_applied(self, device: torch.device | None = None) -> contextlib.AbstractContextManager[None]:
        return loras_applied(self.backbone, self.loras, device)


@contextlib.contextmanager
def loras_applied(backbone: torch.nn.Module, loras, device: torch.device | None = None) -> Iterator[None]:
    """Within the block, `backbone` answers with these (LoRA, strength) pairs, their adapters on `device` (where
    they stay while the backbone moves or streams; None: where they are)."""
    with contextlib.ExitStack() as stack:
        for lora, _ in loras if device is not None else ():
            stack.enter_context(on_device(lora, device))
        stack.enter_context(apply_loras(backbone, list(loras)))
        yield


def build_model(config: ModelConfig, seed: int = 0) -> VideoModel:
    """A randomly initialised model (seeded, so two builds are identical)."""
    torch.manual_seed(seed)
    return VideoModel(
        config=config,
        backbone=HybridBackbone(config.backbone).eval(),
        vae=CausalVideoVAE(config.vae).eval(),
        text_encoder=load_text_encoder(config.text),
        upscaler=LatentUpscaler(config.upscaler).eval() if config.upscaler else None,
        source=f"random init ({config.name})",
        trained=False,
    )


def load_model(path: str | os.PathLike | None = None, preset_name: str | None = None,
               dtype: torch.dtype | None = None, vae_dtype: torch.dtype | None = None) -> VideoModel:
    """Load a checkpoint; with neither argument, the embedded default model.

    `preset_name` without a path builds that preset with random weights (and says so): useful for
    shapes and speed, not for pictures. dtype: the backbone's and upscaler's weights (None: float32, as
    trained), vae_dtype the VAE's (None: as dtype); the text encoder keeps float32 (its states are cast
    where the backbone reads them). memory.engine.precision_dtype picks them for a device.
    """
    model = _load_model(path, preset_name)
    for module, dt in ((model.backbone, dtype), (model.upscaler, dtype), (model.vae, vae_dtype or dtype)):
        if module is not None and dt is not None:
            module.to(dt)
    return model


def _load_model(path: str | os.PathLike | None, preset_name: str | None) -> VideoModel:
    if path is None and preset_name is None:
        path = default_model_path()
        if path is None:
            preset_name = "tiny"
    if path is None:
        log.warning("no trained weights: preset %r runs with RANDOM weights; the video will be noise", preset_name)
        return build_model(preset(preset_name))
    config, parts = load_checkpoint(path, require=("backbone", "vae", "text_encoder"))
    mods = components_from(config, parts, path)
    backbone, vae, text_encoder, upscaler = (mods.get(k) for k in ("backbone", "vae", "text_encoder", "upscaler"))
    return VideoModel(config, backbone, vae, text_encoder, upscaler, source=str(path), trained=True)


def components_from(config: ModelConfig, parts: dict[str, dict[str, torch.Tensor]], path: str | os.PathLike) -> dict:
    """Build each component in `parts` from the config and load its weights (checked key by key)."""
    builders = {"backbone": lambda: HybridBackbone(config.backbone), "vae": lambda: CausalVideoVAE(config.vae),
                "upscaler": lambda: LatentUpscaler(config.upscaler) if config.upscaler else None}
    out = {}
    for name, state in parts.items():
        if name == "text_encoder":
            out[name] = load_text_encoder(config.text, state)
            continue
        # meta skips the random init of weights that are loaded next, which pays off for a big model; a small one
        # initialises faster (the tiny model: 40 ms) than PyTorch imports its compiler stack (0.7 s) to run the
        # init ops on meta tensors. fork_rng: loading leaves the global random state as it was.
        small = sum(t.numel() for t in state.values()) < 20_000_000
        with torch.random.fork_rng(devices=[]), contextlib.nullcontext() if small else torch.device("meta"):
            module = builders[name]()
        if module is None:
            continue
        if not small:
            module.to_empty(device="cpu")
        load_into(module, state, path, name)
        out[name] = module.eval()
    return out


def load_component(path: str | os.PathLike, name: str,
                   dtype: torch.dtype | None = None) -> tuple[ModelConfig, torch.nn.Module]:
    """One component from an all-in-one or single-component file (in `dtype`; None: float32)."""
    config, parts = load_checkpoint(path, require=(name,))
    module = components_from(config, {name: parts[name]}, path)[name]
    return config, module.to(dtype) if dtype is not None else module
