"""Safetensors checkpoints: the model config in the metadata, atomic writes, named key checks.

An all-in-one file prefixes each component (`backbone.`, `vae.`, `text_encoder.`, `upscaler.`);
a single-component file holds one component's keys unprefixed and names it in `aiprod.component`.
Both carry the full `ModelConfig` as JSON under `aiprod.config`. Pickle is never read: whether a file may be
loaded is decided by its first bytes (a safetensors header), whatever its name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, ModelConfig
from .outputs import atomic_output

CONFIG_KEY = "aiprod.config"
COMPONENT_KEY = "aiprod.component"
COMPONENTS = ("backbone", "vae", "text_encoder", "upscaler")


class CheckpointError(ValueError):
    """A file that is not the checkpoint the caller asked for."""


def save_safetensors_atomic(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a file. The file gets
    the umask's mode, as any other tool's; a failed write raises outputs.WriteError naming `path`."""
    seen: set[int] = set()
    out = {}
    for k, v in tensors.items():
        v = v.detach().to("cpu").contiguous()
        # safetensors refuses tensors that share storage (tied embeddings): give each its own copy.
        ptr = v.untyped_storage().data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    with atomic_output(path) as tmp:
        save_file(out, tmp, metadata=metadata)


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


# Pickle streams open with PROTO 2-5; torch.save's default format is a zip archive holding a pickle.
_PICKLE_MAGIC = tuple(bytes([0x80, v]) for v in range(2, 6))
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_HEADER = 100 * 2**20  # safetensors itself refuses headers over 100 MB


def check_safetensors(path: str | os.PathLike, what: str = "") -> Path:
    """Refuse what is not a safetensors file, from its content: 8 bytes of little-endian header length, then
    that many bytes of a JSON object. A pickle or zip file is named as such and never opened; the name and
    extension decide nothing. `what` (e.g. "--model") prefixes the message."""
    path = Path(path)
    where = f"{what} {path}" if what else str(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))[:4]
        raise CheckpointError(f"{where} is a folder; expected a .safetensors file"
                              + (f", e.g. {path / inside[0]} (it holds {', '.join(inside)})" if inside else ""))
    if not path.is_file():
        raise CheckpointError(f"{where}: no such file; expected a .safetensors checkpoint")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            header = f.read(n) if 2 <= n <= min(size - 8, _MAX_HEADER) else b""
    except OSError as e:
        raise CheckpointError(f"{where}: cannot be read ({e.strerror or e}); check its permissions") from e
    if head.startswith(_PICKLE_MAGIC) or head.startswith(_ZIP_MAGIC):
        kind = "a zip archive (PyTorch's torch.save format, which holds a pickle)" if head.startswith(_ZIP_MAGIC) \
            else "a pickle file (as PyTorch .pt, .pth, .ckpt and .bin files often are)"
        raise CheckpointError(f"{where} is {kind}, not safetensors; pickle can run code when loaded, so it is never "
                              "opened. Convert it to .safetensors in an environment you trust, or use the "
                              "model's .safetensors release")
    try:
        ok = header[:1] == b"{" and isinstance(json.loads(header), dict)
    except (UnicodeDecodeError, ValueError):
        ok = False
    if not ok:
        raise CheckpointError(f"{where} is not a safetensors file (it does not start with a safetensors header: "
                              "8 bytes of length, then a JSON object); expected a complete .safetensors file — it "
                              "may be truncated or another format: copy or download it again")
    return path


def read_safetensors(
    path: str | os.PathLike, load_tensors: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (unless `load_tensors` is False) and metadata of a safetensors file; errors name the file."""
    path = check_safetensors(path)
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


def check_keys(expected: Mapping[str, torch.Tensor | tuple[int, ...]], found: Mapping[str, torch.Tensor | tuple[int, ...]],
               heading: str, advice: str, prefix: str = "", error: type[CheckpointError] = CheckpointError) -> None:
    """Raise `error` when a file's tensors (`found`) are not the ones a module expects: `heading`, then the missing
    keys, the unexpected ones and the shape mismatches (a few of each, named as the file names them: `prefix` +
    key), then `advice`. Tensors or shapes on either side."""
    shape = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in expected.items()}
    have = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in found.items()}
    missing = sorted(set(shape) - set(have))
    unexpected = sorted(set(have) - set(shape))
    shapes = [f"{prefix}{k}: expected {shape[k]}, found {have[k]}" for k in sorted(set(shape) & set(have))
              if shape[k] != have[k]]
    if not (missing or unexpected or shapes):
        return
    lines = [heading]
    if missing:
        lines.append(f"  missing {len(missing)} keys, e.g. {[prefix + k for k in missing[:3]]}")
    if unexpected:
        lines.append(f"  unexpected {len(unexpected)} keys, e.g. {[prefix + k for k in unexpected[:3]]}")
    if shapes:
        lines.append(f"  {len(shapes)} shape mismatches, e.g. {shapes[:3]}")
    lines.append(f"  {advice}")
    raise error("\n".join(lines))


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike, component: str) -> None:
    """`load_state_dict` with an error that lists what was expected and what was found."""
    check_keys(module.state_dict(), state, f"{path}: the {component} weights do not match its config",
               "The file was written for another model; use the checkpoint that goes with this config.")
    module.load_state_dict(state)


def read_checkpoint_config(path: str | os.PathLike) -> ModelConfig:
    """The model config of a checkpoint, without loading its tensors."""
    return read_config(path, read_safetensors(path, load_tensors=False)[1])
