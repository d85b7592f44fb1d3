"""Reading LTX-2's files as released: which components a safetensors file holds, its config, and one
component's state dict, read tensor by tensor (a 19B file is never loaded whole).

Lightricks' single files (`ltx-2-19b-dev.safetensors`, ...) hold every component under a prefix and the model's
configuration as JSON in the metadata key `config` (sections `transformer`, `vae`, `audio_vae`, `vocoder`, ...).
Files split for ComfyUI's `diffusion_models` folder hold the transformer with the same prefix or none; the
latent upsampler ships as a file of its own, unprefixed.

fp8 files store linear weights as float8_e4m3fn. Lightricks' and ComfyUI's current format gives each a float32
`<layer>.weight_scale` (and an `.input_scale` for fp8 matmuls, unused here); ComfyUI's older "scaled fp8" format
gives `<layer>.scale_weight` and a `scaled_fp8` marker; a file cast without scales has neither. Weights are
upcast on load: `stored.float() * scale`, then the compute dtype.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ...checkpoint import CheckpointError, check_safetensors

CONFIG_KEY = "config"
TRANSFORMER_ROOT = "model.diffusion_model."

# Component -> key prefixes in a released single file. A key belongs to the component of its longest matching
# prefix, so the connectors stored inside the transformer's prefix are told apart from it.
COMPONENT_PREFIXES: dict[str, tuple[str, ...]] = {
    "transformer": (TRANSFORMER_ROOT,),
    "video_connector": (TRANSFORMER_ROOT + "video_embeddings_connector.", TRANSFORMER_ROOT + "embeddings_connector."),
    "audio_connector": (TRANSFORMER_ROOT + "audio_embeddings_connector.",),
    "text_projection": ("text_embedding_projection.",),
    "video_vae": ("vae.",),
    "audio_vae": ("audio_vae.",),
    "vocoder": ("vocoder.",),
}

# Component -> a key that marks a file holding only that component, unprefixed. An unprefixed transformer is
# read as if its keys carried TRANSFORMER_ROOT (so its connectors, if any, are told apart as above).
UNPREFIXED_MARKERS: dict[str, str] = {
    "transformer": "adaln_single.linear.weight",
    "upscaler": "initial_conv.weight",
}

# Tensors that describe another tensor's quantization rather than a parameter.
_SCALE_SUFFIXES = (".weight_scale", ".scale_weight")
_AUX_SUFFIXES = (*_SCALE_SUFFIXES, ".input_scale", ".scale_input", ".comfy_quant")
_FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


class LTX2FileError(CheckpointError):
    """A file that is not the LTX-2 file (or component) the caller asked for."""


def _component_of(key: str) -> str | None:
    best, best_len = None, -1
    for name, prefixes in COMPONENT_PREFIXES.items():
        for p in prefixes:
            if key.startswith(p) and len(p) > best_len:
                best, best_len = name, len(p)
    return best


def _is_aux(key: str) -> bool:
    return key.endswith(_AUX_SUFFIXES) or key.rsplit(".", 1)[-1] == "scaled_fp8"


@dataclass
class LTX2File:
    """An opened LTX-2 safetensors file: its config and, per component, the keys it holds (prefix stripped)."""

    path: Path
    config: dict = field(default_factory=dict)
    # component -> {key without prefix: key as stored}
    components: dict[str, dict[str, str]] = field(default_factory=dict)
    aux: set[str] = field(default_factory=set)  # quantization scales and markers, as stored

    @property
    def names(self) -> list[str]:
        return sorted(self.components)

    def require(self, component: str) -> dict[str, str]:
        if component not in self.components:
            raise LTX2FileError(
                f"{self.path} holds the LTX-2 components {self.names} but no {component}; expected a file with "
                f"the {component} (keys under {_where(component)}), e.g. Lightricks' ltx-2-19b-dev.safetensors"
            )
        return self.components[component]

    def state_dict(
        self,
        component: str,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        keep: Callable[[str], bool] | None = None,
    ) -> dict[str, Tensor]:
        """The component's tensors with its prefix stripped, floating point ones in `dtype` (fp8 ones
        dequantized with their scale). `keep(key)` False skips a key without reading it."""
        keys = self.require(component)
        out: dict[str, Tensor] = {}
        try:
            with safe_open(str(self.path), framework="pt", device="cpu") as f:
                for key, stored in keys.items():
                    if keep is not None and not keep(key):
                        continue
                    t = f.get_tensor(stored)
                    if t.dtype in _FP8:
                        t = t.float()
                        scale = self._scale_key(stored)
                        if scale is not None:
                            t = t * f.get_tensor(scale).float()
                    if t.is_floating_point():
                        t = t.to(dtype)
                    out[key] = t.to(device)
        except (SafetensorError, OSError) as e:
            raise LTX2FileError(f"{self.path}: could not be read ({e}); it may be truncated: download it again") from e
        return out

    def _scale_key(self, stored: str) -> str | None:
        if not stored.endswith(".weight"):
            return None
        base = stored[: -len(".weight")]
        for suffix in _SCALE_SUFFIXES:
            if base + suffix in self.aux:
                return base + suffix
        return None


def _where(component: str) -> str:
    prefixes = COMPONENT_PREFIXES.get(component, ())
    return " or ".join(prefixes) if prefixes else f"no prefix (marked by {UNPREFIXED_MARKERS.get(component)})"


def _expected() -> str:
    listed = ", ".join(f"{p} ({name})" for name, ps in COMPONENT_PREFIXES.items() for p in ps[:1])
    return f"keys under {listed}, or an unprefixed transformer or upscaler, as in Lightricks' LTX-2 releases"


def config_object(text: str, where: str | os.PathLike) -> dict:
    """The config a released file carries as JSON in its metadata key `config`: a JSON object (a model's sections,
    such as 'transformer' and 'vae', or the upscaler's fields)."""
    try:
        config = json.loads(text)
    except ValueError as e:
        raise LTX2FileError(f"{where}: its '{CONFIG_KEY}' metadata is not JSON ({e}); expected Lightricks' config "
                            "as released; download the file again") from e
    if not isinstance(config, dict):
        raise LTX2FileError(f"{where}: its '{CONFIG_KEY}' metadata is {type(config).__name__}; expected a JSON "
                            "object, as in Lightricks' releases")
    return config


def open_ltx2(path: str | os.PathLike) -> LTX2File:
    """Open a file and sort its keys into components; refuse a file that holds no LTX-2 component."""
    path = check_safetensors(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
    except (SafetensorError, OSError) as e:
        raise LTX2FileError(f"{path}: could not be read as safetensors ({e}); download it again") from e

    config = config_object(meta[CONFIG_KEY], path) if CONFIG_KEY in meta else {}

    file = LTX2File(path=path, config=config)
    keyset = set(keys)
    # A file of one unprefixed component: the transformer is read as if it carried its released prefix.
    root = ""
    if UNPREFIXED_MARKERS["transformer"] in keyset:
        root = TRANSFORMER_ROOT
    elif UNPREFIXED_MARKERS["upscaler"] in keyset:
        file.components["upscaler"] = {k: k for k in keys if not _is_aux(k)}
        file.aux = {k for k in keys if _is_aux(k)}
        return file
    for stored in keys:
        if _is_aux(stored):
            file.aux.add(stored)
            continue
        key = root + stored
        name = _component_of(key)
        if name is None:
            continue
        prefix = max((p for p in COMPONENT_PREFIXES[name] if key.startswith(p)), key=len)
        file.components.setdefault(name, {})[key[len(prefix):]] = stored
    if not file.components:
        sample = ", ".join(sorted(keys)[:5]) or "no tensors"
        raise LTX2FileError(
            f"{path} is not an LTX-2 file: it holds {len(keys)} tensors ({sample}, ...) and "
            f"{'a config with sections ' + str(sorted(config)) if config else 'no LTX-2 config'}; "
            f"expected {_expected()}"
        )
    return file
