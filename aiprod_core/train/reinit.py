"""Changes to a loaded model before training: fresh random weights for some components, keeping the others (e.g.
train the backbone and text encoder from scratch on a trained VAE), or absolute-position features added to a
backbone that has none."""

from __future__ import annotations

import dataclasses
import logging

from ..model import VideoModel, build_model
from ..models.backbone import HybridBackbone

log = logging.getLogger(__name__)

COMPONENTS = ("backbone", "vae", "text_encoder", "upscaler")


def reinitialise(model: VideoModel, names: list[str] | tuple[str, ...], seed: int = 0) -> VideoModel:
    """Replace the named components of `model` by randomly initialised ones of the same config (seeded, so
    two calls give the same weights). The other components, including the VAE's latent statistics when the
    VAE is kept, are untouched. Returns the same model object."""
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise ValueError(f"cannot re-initialise {unknown}: expected component names from {list(COMPONENTS)}")
    if "upscaler" in names and model.upscaler is None:
        raise ValueError("cannot re-initialise the upscaler: this model's config has none")
    fresh = build_model(model.config, seed=seed)
    for name in names:
        setattr(model, name, getattr(fresh, name))
    model.source = f"{model.source} with fresh {', '.join(names)}"
    return model


def with_pattern(config, pattern: str):
    """`config` with another block pattern for the backbone, named after it (the backbone must then be made anew:
    `build_model`, or `reinitialise(model, ["backbone"])` on a model given this config)."""
    config = dataclasses.replace(config, name=f"{config.name}-{pattern}",
                                 backbone=dataclasses.replace(config.backbone, pattern=pattern))
    config.validate()
    return config


def add_absolute_positions(model: VideoModel, n: int) -> VideoModel:
    """Give the backbone absolute-position features with `n` frequencies per axis (config.absolute_positions). Their
    projection starts at zero, so the model computes exactly what it did until training moves it. Returns the same
    model object; one that has `n` already is left as it is."""
    if n < 1:
        raise ValueError(f"absolute positions n={n}: use at least 1 frequency per axis (4 in the tiny preset)")
    have = model.config.backbone.absolute_positions
    if have == n:
        log.info("the backbone already has absolute-position features (%d per axis): nothing to add", n)
        return model
    if have:
        raise ValueError(f"this backbone already has absolute-position features ({have} per axis), not {n}; "
                         "leave out --absolute-positions to keep them")
    config = dataclasses.replace(model.config, backbone=dataclasses.replace(model.config.backbone, absolute_positions=n))
    backbone = HybridBackbone(config.backbone).to(next(model.backbone.parameters()).dtype)
    missing, unexpected = backbone.load_state_dict(model.backbone.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("pos_embed.") for k in missing), (missing, unexpected)
    model.config, model.backbone = config, backbone.train(model.backbone.training)
    model.source = f"{model.source} with absolute positions"
    return model
