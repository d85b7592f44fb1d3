"""VideoModel: every component of one model, built from one config; loading, and LoRAs applied while sampling.

A model belongs to a family (`ModelFamily`): AIPROD's own, or LTX-2 (families/ltx2). The family is found once, from
the file, in `load_model`, and supplies what differs between families to the pipeline: where the stages run, the
noise levels and guidance of each sampling stage, the 2x upscale and how LoRA files are read. Everything else (the
sampling loop, decoding, image-to-video, text caching) is shared and reads the model through the same fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .checkpoint import CONFIG_KEY, load_checkpoint, load_into, read_checkpoint_config
from .config import ModelConfig, preset
from .families.ltx2.lora import ltx2_targets, read_ltx2_lora
from .families.ltx2.model import LTX2Files, LTX2ModelConfig, is_ltx2_file, load_ltx2, read_ltx2_config
from .families.ltx2.upscaler import upsample_normalized
from .memory.engine import on_device
from .memory.placement import Placement
from .models.backbone import HybridBackbone
from .models.lora import LoRA, apply_loras, read_lora
from .models.upscaler import LatentUpscaler, upsample_latent
from .models.vae import CausalVideoVAE
from .sampling.ltx2_schedule import (
    DISTILLED_SIGMAS,
    NO_GUIDANCE,
    LTX2Guidance,
    distilled_sigmas,
    latent_tokens,
    ltx2_sigmas,
)
from .sampling.schedules import denoise_sigmas, ltx_sigmas, shifted_sigmas
from .text import TextEncoder, load_text_encoder
from .text.lora import adapted_text_encoder

log = logging.getLogger(__name__)

DEFAULT_STEPS, DEFAULT_CFG = 20, 3.0  # generate()'s and the CLI's, for a dev model
DISTILLED_STEPS = len(DISTILLED_SIGMAS) - 1  # 8

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "aiprod-v2-tiny.safetensors"


def default_model_path() -> Path | None:
    """The embedded default model shipped inside the package, if this install has it."""
    p = WEIGHTS_DIR / DEFAULT_MODEL
    return p if p.is_file() else None


class ModelFamily:
    """AIPROD's family, and the interface other families implement: what the pipeline asks that differs by family.

    Each sampling answer is the keywords of `sampling.loop.sample_latent` for one stage: its noise levels
    (`sigmas`) and guidance (`cfg`, or `guidance` with `extra_args`).
    """

    name = "aiprod"
    title = "AIPROD"
    # LoRA training only: the trainer adapts the transformer, not the text encoder, and never trains the model whole
    lora_only = False
    # the backbone takes a noise level per latent voxel, so that clean (kept) voxels are shown at level 0
    voxel_sigma = False
    lora_batch = 4  # clips a step in the default LoRA recipe (train.phases.lora_recipe)

    def lora_targets(self, targets: tuple[str, ...]) -> tuple[str, ...]:
        """The layer names a LoRA's `targets` name in this family's backbone."""
        return targets

    def placement(self, model: VideoModel, clip: tuple[int, int, int], device: torch.device, **options) -> Placement:
        """Where each stage runs (memory.placement.Placement.build's options)."""
        return Placement.build(model.config, clip, device, **options)

    def text_encoding(self, model: VideoModel, placement: Placement) -> contextlib.AbstractContextManager[None]:
        """The text encoder placed for the "text_encoding" stage: on the device, moved whole, when the plan says
        it fits there; else where it is."""
        return placement.moved(model.text_encoder if placement.text_on_device else None)

    def sampling(self, model: VideoModel, shape: tuple[int, ...], steps: int | None, cfg: float | None,
                 stg: float = 0.0, shift: float | None = None, fps: float | None = None) -> dict:
        """The first stage, from noise: LTX's token-shift schedule and CFG on the velocity (the backbone does not
        read the frame rate). steps, cfg None: the defaults, 20 and 3."""
        if stg:
            raise ValueError(f"stg={stg}: AIPROD's blocks cannot skip their self-attention, which STG perturbs; "
                             "use stg=0 (CFG alone) with this model")
        steps, cfg = DEFAULT_STEPS if steps is None else steps, DEFAULT_CFG if cfg is None else cfg
        return {"sigmas": ltx_sigmas(steps, latent_tokens(shape), shift=shift), "cfg": cfg}

    def sampling_note(self, model: VideoModel, steps: int | None, cfg: float | None, stg: float = 0.0,
                      shift: float | None = None) -> str | None:
        """One line for the user when the model samples otherwise than these settings suggest (None: nothing to
        say)."""
        return None

    def refining(self, model: VideoModel, shape: tuple[int, ...], steps: int, denoise: float, cfg: float,
                 shift: float | None = None, fps: float | None = None) -> dict:
        """The refinement after the 2x upscale: the last `steps` of the schedule for steps / denoise steps."""
        tokens = latent_tokens(shape)
        return {"sigmas": denoise_sigmas(lambda n: ltx_sigmas(n, tokens, shift=shift), steps, denoise), "cfg": cfg}

    def upsample(self, model: VideoModel, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent [B,C,t,h,w] -> [B,C,t,2h,2w], through the VAE's statistics."""
        return upsample_latent(model.upscaler, model.vae, latent)

    def read_lora(self, model: VideoModel, path: str | os.PathLike) -> tuple[LoRA, LoRA | None]:
        """A LoRA file's backbone adapters and its text encoder's (None when it has none)."""
        return read_lora(path, model.backbone, model.text_encoder)


class LTX2Family(ModelFamily):
    """LTX-2 (video only): its schedule and its guidance on x0 (CFG, STG, rescale 0.7), or a distilled model's
    fixed sigmas without guidance, kept voxels at noise level 0, the transformer told the frame rate, the stage-2
    distilled sigmas after its upscaler. Its placement is
    AIPROD's (the memory planner reads an LTX-2 config as such), but for Gemma's layers, which stream as planned."""

    name = "ltx2"
    title = "LTX-2"
    rescale = 0.7  # LTX-2's guidance rescale (ltx-pipelines' defaults)
    lora_only = True  # 19B weights: a LoRA on the frozen transformer, as Lightricks' ltx-trainer trains
    voxel_sigma = True
    lora_batch = 1  # one clip of LTX-2's size a step is what 8 GB holds (memory.ltx2_plan)

    def lora_targets(self, targets: tuple[str, ...]) -> tuple[str, ...]:
        return ltx2_targets(targets)

    def sampling(self, model: VideoModel, shape: tuple[int, ...], steps: int | None, cfg: float | None,
                 stg: float = 0.0, shift: float | None = None, fps: float | None = None) -> dict:
        """LTX-2's schedule (or `shift`'s), its guidance, and the frame rate (None: the model's 24) by which the
        transformer places frames in time.

        A distilled model (model.config.distilled) samples the 8 sigmas it was distilled for, and without guidance
        (cfg 1), when steps and cfg are not given (None), or steps is 8 with no shift: what a user of the distilled
        file expects. Given steps and cfg are kept, as asked: other steps take the dev schedule. A dev model's
        defaults are 20 steps and cfg 3."""
        if self._distilled_schedule(model, steps, shift):
            sigmas = distilled_sigmas(1)
        else:
            steps = DEFAULT_STEPS if steps is None else steps
            sigmas = ltx2_sigmas(steps, latent_tokens(shape)) if shift is None else shifted_sigmas(steps, shift)
        cfg = (1.0 if model.config.distilled else DEFAULT_CFG) if cfg is None else cfg
        if model.config.distilled and math.isclose(cfg, 1.0) and not stg:
            guidance = NO_GUIDANCE
        else:
            guidance = LTX2Guidance(cfg=cfg, stg=stg, rescale=self.rescale, stg_blocks=(model.config.stg_block,))
        return {"sigmas": sigmas, "guidance": guidance, "extra_args": {"fps": float(fps or model.config.fps)}}

    def sampling_note(self, model: VideoModel, steps: int | None, cfg: float | None, stg: float = 0.0,
                      shift: float | None = None) -> str | None:
        """For a distilled model: which sigmas and guidance it samples with, and how the given settings depart
        from the ones it was distilled for."""
        if not model.config.distilled:
            return None
        if self._distilled_schedule(model, steps, shift) and (cfg is None or math.isclose(cfg, 1.0)) and not stg:
            return (f"{model.config.name} is distilled: sampling its {DISTILLED_STEPS} distilled sigmas without "
                    "guidance (cfg 1)")
        asked = [f"{name} {value:g}" for name, value, plain in (("steps", steps, DISTILLED_STEPS), ("cfg", cfg, 1.0),
                                                                 ("stg", stg, 0.0), ("shift", shift, None))
                 if value is not None and value != plain]
        return (f"{model.config.name} is distilled for {DISTILLED_STEPS} fixed sigmas without guidance; sampling "
                f"with {', '.join(asked)} as asked (leave them out for the distilled settings)")

    @staticmethod
    def _distilled_schedule(model: VideoModel, steps: int | None, shift: float | None) -> bool:
        return model.config.distilled and steps in (None, DISTILLED_STEPS) and shift is None

    @contextlib.contextmanager
    def text_encoding(self, model: VideoModel, placement: Placement) -> Iterator[None]:
        """Gemma's decoder layers resident or streamed as the plan says (Gemma 3 12B is 24 GB in bfloat16, more
        than a small card holds), its embedding and the connector moved whole; where the plan keeps the stage on
        the CPU, or nothing is planned, the encoder stays where it is."""
        sp = placement.stage("text_encoding")
        if sp is None or sp.where != "gpu":
            yield
            return
        encoder = model.text_encoder
        with placement.moved(encoder.connector), placement.backbone(encoder.gemma.model, "text_encoding"):
            yield

    def refining(self, model: VideoModel, shape: tuple[int, ...], steps: int, denoise: float, cfg: float,
                 shift: float | None = None, fps: float | None = None) -> dict:
        """LTX-2's stage 2: three distilled steps from 0.909375, without guidance (ltx-pipelines'
        two-stage pipeline; it runs them with the distilled LoRA, which a dev model takes through with_lora_file)."""
        return {"sigmas": distilled_sigmas(2), "guidance": NO_GUIDANCE,
                "extra_args": {"fps": float(fps or model.config.fps)}}

    def upsample(self, model: VideoModel, latent: torch.Tensor) -> torch.Tensor:
        stats = model.vae.per_channel_statistics
        return upsample_normalized(model.upscaler, latent, stats.get_buffer("mean-of-means"),
                                   stats.get_buffer("std-of-means"))

    def read_lora(self, model: VideoModel, path: str | os.PathLike) -> tuple[LoRA, LoRA | None]:
        return read_ltx2_lora(path, model.backbone), None


AIPROD, LTX2 = ModelFamily(), LTX2Family()


@dataclass
class VideoModel:
    """All components of one model, built from one config (for LTX-2: families.ltx2.model.LTX2ModelConfig)."""

    config: ModelConfig | LTX2ModelConfig
    backbone: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: TextEncoder | None
    upscaler: torch.nn.Module | None
    source: str  # a file path, or "random init (preset NAME)"
    trained: bool
    loras: tuple[tuple[LoRA, float], ...] = field(default=())  # backbone adapters applied while sampling
    family: ModelFamily = AIPROD

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
        lora, text_lora = self.family.read_lora(self, path)
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
               dtype: torch.dtype | None = None, vae_dtype: torch.dtype | None = None, *,
               text_encoder: str | os.PathLike | None = None, vae: str | os.PathLike | None = None,
               text_projection: str | os.PathLike | None = None,
               upscaler: str | os.PathLike | None = None) -> VideoModel:
    """Load a checkpoint; with neither argument, the embedded default model.

    An LTX-2 file (Lightricks' single file or ComfyUI's split transformer) loads as an LTX-2 model: `text_encoder`
    is Gemma 3 (file or folder; without it the model samples from given contexts only), and `vae`,
    `text_projection` and `upscaler` are the split files of those components (None: the checkpoint's own; no
    upscaler). AIPROD checkpoints carry every component and take none of them.

    `preset_name` without a path builds that preset with random weights (and says so): useful for
    shapes and speed, not for pictures. dtype: the backbone's and upscaler's weights (None: float32, as
    trained), vae_dtype the VAE's (None: as dtype); AIPROD's text encoder keeps float32 (its states are cast
    where the backbone reads them), LTX-2's Gemma takes bfloat16 with a bfloat16 dtype.
    memory.engine.precision_dtype picks them for a device.
    """
    files = {"text_encoder": text_encoder, "vae": vae, "text_projection": text_projection, "upscaler": upscaler}
    if path is not None and model_family(path) is LTX2:
        parts = load_ltx2(LTX2Files(str(path), **{k: None if v is None else str(v) for k, v in files.items()}),
                          dtype=dtype, vae_dtype=vae_dtype)
        return VideoModel(parts.config, parts.transformer, parts.vae, parts.text_encoder, parts.upscaler,
                          source=str(path), trained=True, family=LTX2)
    _refuse_component_files(path, files)
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


def model_family(path: str | os.PathLike) -> ModelFamily:
    """The family of a checkpoint, from its header: AIPROD's files carry `aiprod.config`, LTX-2's are recognised
    by their keys (families.ltx2.files); anything else is left to AIPROD's loader, whose error says what it
    expected."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            if CONFIG_KEY in (f.metadata() or {}):
                return AIPROD
    except (SafetensorError, OSError):
        return AIPROD
    return LTX2 if is_ltx2_file(path) else AIPROD


def read_model_config(path: str | os.PathLike, *, need_text_encoder: bool = False, names: dict[str, str] | None = None,
                      **files: str | os.PathLike | None) -> ModelConfig | LTX2ModelConfig:
    """A checkpoint's config from its header, for either family, every file checked for its slot (`files`: LTX-2's
    other files, as load_model takes them; `names`: how the caller calls each slot, e.g. the CLI's flags)."""
    given = {k: str(v) for k, v in files.items() if v is not None}
    if model_family(path) is LTX2:
        return read_ltx2_config(LTX2Files(str(path), **given), need_text_encoder, names)
    _refuse_component_files(path, given, names)
    return read_checkpoint_config(path)


def _refuse_component_files(path: str | os.PathLike | None, files: dict, names: dict[str, str] | None = None) -> None:
    """An AIPROD checkpoint carries all its components: component files given beside it are a mistake."""
    given = sorted(k for k, v in files.items() if v is not None)
    if given:
        flag = (names or {}).get(given[0], f"{given[0]}=")
        raise ValueError(f"{flag} is for LTX-2 models, whose components come in files of their own; "
                         f"{path or 'the built-in model'} is an AIPROD checkpoint that carries all its components: "
                         f"leave {flag} out")


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
