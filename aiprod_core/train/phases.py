"""Curriculum phases: what each phase trains, on what data, for how long. A phase list is a JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..world import BASIC_MOTIONS, LANGUAGES, MOTIONS, WorldSpec

# "decoder" tunes the VAE's decoder alone: the encoder, so the latent space the backbone learned, stays as it is
STAGES = ("vae", "decoder", "backbone", "upscaler")


@dataclass
class Phase:
    """One curriculum phase. `world` holds WorldSpec fields (frames, size, objects, motions...) for the
    synthetic world; for a user's clips only `frames`, `height` and `width` are read from it."""

    name: str
    stage: str = "backbone"
    steps: int = 1000
    lr: float = 3e-4
    batch: int = 8
    warmup: int = 50
    world: dict[str, Any] = field(default_factory=dict)
    caption_dropout: float = 0.1
    text_aux_weight: float = 0.1
    warped_noise: float = 0.0  # fraction of samples noised with noise warped along the clip's own flow
    # shift of the training sigmas; None: LTX's token-count rule. A larger shift trains more at high noise,
    # where a clip's layout and direction of motion are decided
    sigma_shift: float | None = None
    # a backbone phase also trains the text encoder (and its attribute heads); off, the words keep the meaning
    # earlier phases gave them, e.g. while the backbone learns something the captions do not say (camera moves)
    train_text_encoder: bool = True
    # fraction of world captions given 1-3 made-up words (world/words.py), so that words the model never saw,
    # such as those of a new sentence frame, carry no attribute
    caption_distractors: float = 0.0
    # fraction of world captions written as plain prompts ("a red circle moving left", "red circle: moves left";
    # the "train-plain" frames of world/plain_captions.py, never its evaluation frames)
    plain_captions: float = 0.0
    # fraction of the other world captions given the look of a typed prompt: first letter lowercased and/or final
    # full stop dropped, so that neither carries meaning for the byte-level text encoder
    casual_captions: float = 0.0
    # the caption languages to draw from, uniformly (empty: all twelve); a language listed twice is drawn twice as
    # often, so a phase can give more of its captions to a language whose words the model reads worst
    languages: list[str] = field(default_factory=list)
    # fraction of samples shown their first latent frame clean and scored on the rest (image-to-video, as LTX-Video
    # trains it): the model learns to continue a given first frame, as the sampler's noise mask asks of it
    first_frame: float = 0.0
    # the number of world scenes a phase draws its clips from (0: a new scene for every sample). Each scene's latent
    # is encoded once and kept in CPU memory, and its caption is drawn anew each time (language, sentence frame), so
    # a step costs no VAE encode once the pool is seen: the frozen encoder is about 40% of a tiny backbone step
    world_pool: int = 0
    # weight of a text-side loss that pushes apart the encoder's (masked-mean) states of an English caption and of
    # the same caption with another colour word, past a cosine of 0.5 (objectives.colour_contrast_loss): for phrases
    # whose colour the encoder barely reads
    colour_contrast: float = 0.0
    # hard-example mining: a fraction `focus_share` of a world phase's samples are one object with one of these
    # [colour, shape, motion] combinations, drawn uniformly (e.g. those a scan of plain prompts found drawn wrong);
    # the rest of the scene (size, speed, place) and the caption are drawn as usual
    focus: list[list[str]] = field(default_factory=list)
    focus_share: float = 0.0

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"phase {self.name!r}: stage={self.stage!r}; expected one of {STAGES}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0:
            raise ValueError(f"phase {self.name!r}: steps, batch and lr must be positive (got {self.steps}, {self.batch}, {self.lr})")
        if not 0.0 <= self.warped_noise <= 1.0:
            raise ValueError(f"phase {self.name!r}: warped_noise={self.warped_noise} is a fraction of samples; use 0..1")
        if not 0.0 <= self.first_frame <= 1.0:
            raise ValueError(f"phase {self.name!r}: first_frame={self.first_frame} is a fraction of samples; use 0..1")
        if not 0.0 <= self.caption_distractors <= 1.0:
            raise ValueError(
                f"phase {self.name!r}: caption_distractors={self.caption_distractors} is a fraction of captions; use 0..1")
        unknown = [lang for lang in self.languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"phase {self.name!r}: unknown caption languages {unknown}; choose from {LANGUAGES}")
        for name in ("plain_captions", "casual_captions"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"phase {self.name!r}: {name}={getattr(self, name)} is a fraction of captions; use 0..1")
        if self.colour_contrast < 0:
            raise ValueError(f"phase {self.name!r}: colour_contrast={self.colour_contrast} is a loss weight; use 0 or more")
        if self.world_pool < 0 or (self.world_pool and self.stage != "backbone"):
            raise ValueError(f"phase {self.name!r}: world_pool={self.world_pool}; expected 0 (a new scene for every "
                             f"sample) or, in a backbone phase, the number of scenes to draw from (e.g. 8192)")
        if not 0.0 <= self.focus_share <= 1.0 or (self.focus_share and not self.focus):
            raise ValueError(f"phase {self.name!r}: focus_share={self.focus_share} is a fraction of samples (0..1), "
                             "with `focus` listing the [colour, shape, motion] combinations to draw")
        if self.focus_share and self.world_pool:
            raise ValueError(f"phase {self.name!r}: focus_share and world_pool together; a pooled scene's latent is "
                             "kept for its key, so a focused sample cannot replace it: use one of the two")
        self.spec  # noqa: B018 (validates the world fields now, not in the middle of a run)
        for combo in self.focus:
            self.focus_spec(combo)

    def focus_spec(self, combo: list[str]) -> WorldSpec:
        """The phase's world narrowed to one object of a focus combination [colour, shape, motion]."""
        if len(combo) != 3:
            raise ValueError(f"phase {self.name!r}: focus entry {combo!r}; expected [colour, shape, motion]")
        colour, shape, motion = combo
        try:
            return dataclasses.replace(self.spec, objects=(1,), colours=(colour,), shapes=(shape,), motions=(motion,))
        except ValueError as e:
            raise ValueError(f"phase {self.name!r}: focus entry {combo!r}: {e}") from e

    @property
    def spec(self) -> WorldSpec:
        w = {k: tuple(v) if isinstance(v, list) else v for k, v in self.world.items()}
        try:
            return WorldSpec(**w)
        except TypeError as e:
            known = [f.name for f in dataclasses.fields(WorldSpec)]
            raise ValueError(f"phase {self.name!r}: bad world field ({e}); known fields: {known}") from e


def tiny_recipe() -> list[Phase]:
    """The recipe of aiprod-v2-tiny: VAE first, five backbone phases from simple to hard, then the upscaler.
    About 1.5 hours on 2 CPU cores."""
    return [
        Phase("vae", stage="vae", steps=1500, lr=1e-3, batch=6,
              world={"objects": [1, 2], "motions": list(MOTIONS), "sizes": ["small", "normal", "large"]}),
        Phase("1-still", steps=1000, lr=5e-4, world={"frames": 9, "motions": ["still"]}),
        Phase("2-moving", steps=2500, lr=4e-4, world={"frames": 17, "motions": list(BASIC_MOTIONS)}),
        Phase("3-two-objects", steps=1500, lr=3e-4, world={"objects": [1, 2]}),
        Phase("4-complex-motion", steps=1200, lr=2e-4,
              world={"objects": [1, 2], "motions": list(MOTIONS), "speeds": ["slow", "normal", "fast"], "bounce": 0.3}),
        Phase("5-edge-cases", steps=1000, lr=1.5e-4,
              world={"objects": [1, 2], "motions": list(MOTIONS), "speeds": ["slow", "normal", "fast"],
                     "sizes": ["small", "normal", "large"], "bounce": 0.2, "enter_exit": 0.25, "crossing": 0.3}),
        Phase("upscaler", stage="upscaler", steps=800, lr=1e-3, batch=4,
              world={"height": 128, "width": 128, "objects": [1, 2], "motions": list(MOTIONS)}),
    ]


def lora_recipe(steps: int = 600, frames: int = 17, height: int = 64, width: int = 64, temporal: int = 4,
                batch: int = 4) -> list[Phase]:
    """LoRA on a user's clips: short clips first (about half the frames, 1 + `temporal` k), then full length."""
    short = max(1, (frames - 1) // 2 // temporal * temporal + 1)
    first = max(1, steps // 3)
    return [
        Phase("lora-short", steps=first, lr=1e-3, batch=batch, world={"frames": short, "height": height, "width": width}),
        Phase("lora-full", steps=steps - first, lr=5e-4, batch=batch,
              world={"frames": frames, "height": height, "width": width}),
    ]


RECIPES = {"tiny": tiny_recipe}


def scale_steps(phases: list[Phase], factor: float) -> list[Phase]:
    """Multiply every phase's steps and warmup by `factor` in place (at least one step each), so that a
    shortened recipe keeps each phase's share of the run and the shape of its learning-rate schedule."""
    if factor <= 0:
        raise ValueError(f"steps scale {factor} must be positive, e.g. 0.1 for a tenth of the recipe")
    for p in phases:
        p.steps = max(1, round(p.steps * factor))
        p.warmup = min(p.steps, max(1, round(p.warmup * factor)))
    return phases


def save_phases(path: str | os.PathLike, phases: list[Phase]) -> None:
    Path(path).write_text(json.dumps([dataclasses.asdict(p) for p in phases], indent=2, ensure_ascii=False))


def load_phases(path: str | os.PathLike) -> list[Phase]:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: could not read the phase list ({e}); expected a JSON list of phases") from e
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path}: expected a non-empty JSON list of phases")
    known = {f.name for f in dataclasses.fields(Phase)}
    phases = []
    for i, p in enumerate(raw):
        unknown = sorted(set(p) - known)
        if unknown:
            raise ValueError(f"{path}: phase {i} has unknown keys {unknown}; known keys: {sorted(known)}")
        phases.append(Phase(**p))
    return phases
