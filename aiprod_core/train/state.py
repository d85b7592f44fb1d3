"""Training state in one safetensors file: weights, optimizer moments and the position in the curriculum.

The optimizer's tensors are flattened to `optim.<param index>.<name>`; its hyper-parameters and the
position go into the metadata as JSON. Nothing is pickled.
"""

from __future__ import annotations

import json
import os

import torch

from ..checkpoint import CheckpointError, read_safetensors, save_safetensors_atomic

STATE_KEY = "aiprod.train_state"


def save_state(path: str | os.PathLike, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None,
               position: dict, metadata: dict[str, str] | None = None) -> None:
    tensors = {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}
    groups = []
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx, st in sd["state"].items():
            for k, v in st.items():
                tensors[f"optim.{idx}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
        groups = sd["param_groups"]
    meta = {STATE_KEY: json.dumps({"position": position, "param_groups": groups}), **(metadata or {})}
    save_safetensors_atomic(tensors, path, meta)


def load_state(path: str | os.PathLike, modules: dict[str, torch.nn.Module],
               complete: bool = False, ignore: set[str] = frozenset()) -> tuple[dict, dict | None]:
    """Load weights in place; return (position, optimizer state dict or None). complete: the state must hold no
    module but `modules` and those named in `ignore` (a run resuming; a reader of some modules leaves it off)."""
    tensors, meta = read_safetensors(path)
    if STATE_KEY not in meta:
        raise CheckpointError(f"{path}: not a training state (no '{STATE_KEY}' metadata); pass a file written by `aiprod train`")
    info = json.loads(meta[STATE_KEY])
    unknown = complete and sorted({k.split(".", 1)[0] for k in tensors} - set(modules) - set(ignore) - {"optim"})
    if unknown:
        raise CheckpointError(f"{path}: training state holds {unknown}, which this run does not train; it was written "
                              "for another model or recipe (a LoRA with text-encoder adapters, say): resume with the "
                              "options it was started with")
    for name, m in modules.items():
        own = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        missing = set(m.state_dict()) - set(own)
        if missing:
            raise CheckpointError(f"{path}: training state lacks {len(missing)} '{name}' tensors, e.g. {sorted(missing)[:3]}; "
                                  "it was written for another model or recipe")
        m.load_state_dict(own)
    if not info["param_groups"]:
        return info["position"], None
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    return info["position"], {"state": state, "param_groups": info["param_groups"]}
