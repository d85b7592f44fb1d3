"""Fresh random weights for some components of a loaded model, keeping the others: e.g. train the backbone
and text encoder from scratch on a trained VAE (ablations, or a new backbone for an existing latent space)."""

from __future__ import annotations

from ..pipeline import VideoModel, build_model

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
