"""Lightricks' own denoising loop (ltx-pipelines) and the reference model called with video alone: what the LTX-2
sampling tests compare our loop with."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import importlib.util
import sys

import pytest
import torch
from ltx_core.model.transformer import X0Model


@functools.cache
def reference_loop():
    """(euler_denoising_loop, multi_modal_guider_denoising_func, simple_denoising_func) from ltx-pipelines."""
    try:
        root = importlib.metadata.distribution("ltx-pipelines").locate_file("ltx_pipelines")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ltx-pipelines 1.0.0 (pip install --no-deps ltx-pipelines==1.0.0) holds the reference loop")
    for name, path in (("ltx_pipelines", root), ("ltx_pipelines.utils", root / "utils")):
        if name not in sys.modules:  # an empty package in place of the __init__ that imports every pipeline
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(path)]
            sys.modules[name] = importlib.util.module_from_spec(spec)
    from ltx_pipelines.utils.helpers import multi_modal_guider_denoising_func, simple_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop

    return euler_denoising_loop, multi_modal_guider_denoising_func, simple_denoising_func


class VideoOnlyX0(torch.nn.Module):
    """The reference X0Model called with the video alone (audio None); the audio state passes through."""

    def __init__(self, velocity_model):
        super().__init__()
        self.x0 = X0Model(velocity_model)

    def forward(self, video, audio, perturbations):
        denoised, _ = self.x0(video, None, perturbations)
        return denoised, audio.latent
