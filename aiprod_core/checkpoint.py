"""Safetensors checkpoints: the model config in the metadata, atomic writes, named key checks.

An all-in-one file prefixes each component (`backbone.`, `vae.`, `text_encoder.`, `upscaler.`);
a single-component file holds one component's keys unprefixed and names it in `aiprod.component`.
Both carry the full `ModelConfig` as JSON under `aiprod.config`. Pickle is never read.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, ModelConfig

CONFIG_KEY = "aiprod.config"
COMPONENT_KEY = "aiprod.component"
COMPONENTS = ("backbone", "vae", "text_encoder", "upscaler")


class CheckpointError(ValueError):
    """A file that is not the checkpoint the caller asked for."""


def save_safetensors_atomic(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    out = {}
    for k, v in tensors.items():
        v = v.detach().to("cpu").contiguous()
        # safetensors refuses tensors that share storage (tied embeddings): give each its own copy.
        ptr = v.untyped_storage().data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(out, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _state(x: torch.nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return x.state_dict() if isinstance(x, torch.nn.Module) else x


def save_checkpoint(
    path: str | os.PathLike,
    config: ModelConfig,
    components: dict[str, torch.nn.Module | dict[str, torch.Tensor]],
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Save one or more components. One component is written unprefixed; several, prefixed.
    `dtype` (e.g. torch.float16) stores floating-point tensors at that precision; loading casts back."""
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise CheckpointError(f"unknown components {sorted(unknown)}; expected some of {COMPONENTS}")
    meta = {CONFIG_KEY: config.to_json(), **(metadata or {})}
    if len(components) == 1:
        (name, module), = components.items()
        meta[COMPONENT_KEY] = name
        tensors = dict(_state(module))
    else:
        tensors = {f"{name}.{k}": v for name, m in components.items() for k, v in _state(m).items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    save_safetensors_atomic(tensors, path, meta)


def read_safetensors(
    path: str | os.PathLike, load_tensors: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (unless `load_tensors` is False) and metadata of a safetensors file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected a .safetensors checkpoint")
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin"):
        raise CheckpointError(
            f"{path}: pickle-based {path.suffix} files are not loaded (they can run code); "
            "expected .safetensors — convert it to safetensors first"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()} if load_tensors else {}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: could not be read as safetensors ({e}); expected a complete .safetensors file — "
            "it may be truncated or another format: copy or download it again"
        ) from e
    return tensors, meta


def read_config(path: str | os.PathLike, meta: dict[str, str]) -> ModelConfig:
    if CONFIG_KEY not in meta:
        raise CheckpointError(
            f"{path}: no '{CONFIG_KEY}' metadata; expected an AIPROD checkpoint with its model config "
            f"(found metadata keys {sorted(meta) or 'none'}). Load third-party files with their own loader."
        )
    try:
        return ModelConfig.from_json(meta[CONFIG_KEY])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its '{CONFIG_KEY}' metadata is not a valid model config: {e}") from e


def load_checkpoint(
    path: str | os.PathLike, require: tuple[str, ...] = ()
) -> tuple[ModelConfig, dict[str, dict[str, torch.Tensor]]]:
    """(config, {component: state_dict}) of an all-in-one or single-component file.

    `require` names components that must be present, e.g. ("backbone", "vae").
    """
    tensors, meta = read_safetensors(path)
    config = read_config(path, meta)
    if COMPONENT_KEY in meta:
        parts = {meta[COMPONENT_KEY]: tensors}
    else:
        parts: dict[str, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            name, _, rest = k.partition(".")
            if name not in COMPONENTS or not rest:
                raise CheckpointError(
                    f"{path}: key {k!r} has no component prefix; expected keys starting with one of "
                    f"{[c + '.' for c in COMPONENTS]}"
                )
            parts.setdefault(name, {})[rest] = v
    missing = [c for c in require if c not in parts]
    if missing:
        raise CheckpointError(
            f"{path}: has no {missing} weights; expected {list(require)}, found {sorted(parts) or 'nothing'}"
        )
    return config, parts


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike, component: str) -> None:
    """`load_state_dict` with an error that lists what was expected and what was found."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: expected {tuple(own[k].shape)}, found {tuple(state[k].shape)}"
        for k in sorted(set(own) & set(state))
        if own[k].shape != state[k].shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{path}: the {component} weights do not match its config"]
        if missing:
            lines.append(f"  missing {len(missing)} keys, e.g. {missing[:3]}")
        if unexpected:
            lines.append(f"  unexpected {len(unexpected)} keys, e.g. {unexpected[:3]}")
        if shapes:
            lines.append(f"  {len(shapes)} shape mismatches, e.g. {shapes[:3]}")
        lines.append("  The file was written for another model; use the checkpoint that goes with this config.")
        raise CheckpointError("\n".join(lines))
    module.load_state_dict(state)


def read_checkpoint_config(path: str | os.PathLike) -> ModelConfig:
    """The model config of a checkpoint, without loading its tensors."""
    return read_config(path, read_safetensors(path, load_tensors=False)[1])
