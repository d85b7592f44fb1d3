"""An LTX-2 transformer made hybrid (`aiprod hybridize`): the student built from its teacher, and written as the
teacher's own file with the transformer replaced.

The student keeps every teacher tensor outside the replaced blocks; each replaced position holds a fresh
`transformer.ConvBlock`. Its file is the teacher's (single file or ComfyUI's split transformer) with the video
transformer's tensors swapped for the student's and `aiprod_pattern` added to the config, so that it loads wherever
the teacher's does, beside the same VAE, Gemma and connector files; the audio stream's tensors are kept as they were.
Weights the teacher stored in fp8 are written in the student's dtype.
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch
from safetensors import safe_open

from ...checkpoint import save_safetensors_atomic
from .config import LTX2TransformerConfig
from .files import CONFIG_KEY, TRANSFORMER_ROOT, open_ltx2
from .transformer import LTX2VideoTransformer, is_audio_key


def student_transformer(teacher: LTX2VideoTransformer, pattern: str, replaced: list[int],
                        seed: int) -> LTX2VideoTransformer:
    """The teacher with a conv block (fresh, from `seed`) at each replaced position and its weights elsewhere."""
    cfg: LTX2TransformerConfig = dataclasses.replace(teacher.cfg, pattern=pattern)
    cfg.validate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        student = LTX2VideoTransformer(cfg)
    fresh = tuple(f"transformer_blocks.{i}." for i in replaced)
    state = {k: v for k, v in teacher.state_dict().items() if not k.startswith(fresh)}
    missing, unexpected = student.load_state_dict(state, strict=False)
    if [k for k in missing if not k.startswith(fresh)] or unexpected:
        raise RuntimeError(f"student and teacher differ outside the replaced blocks: {missing[:3]} {unexpected[:3]}")
    return student.to(next(teacher.parameters())).eval()


def save_hybrid(teacher_path: str | os.PathLike, student: LTX2VideoTransformer, path: str | os.PathLike,
                metadata: dict[str, str]) -> None:
    """The teacher's file with its video transformer replaced by `student`'s tensors and config (atomic)."""
    file = open_ltx2(teacher_path)
    stored = file.require("transformer")
    with safe_open(str(file.path), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        # the root the transformer's keys are stored under: the single file's, or none in a split transformer
        root = TRANSFORMER_ROOT if any(s.startswith(TRANSFORMER_ROOT) for s in stored.values()) else ""
        video = {s for k, s in stored.items() if not is_audio_key(k)} | {s for s in file.aux if s.startswith(root)
                                                                        and not is_audio_key(s[len(root):])}
        tensors = {k: f.get_tensor(k) for k in f.keys() if k not in video}  # noqa: SIM118
    tensors.update({root + k: v.detach().contiguous() for k, v in student.state_dict().items()})
    config = json.loads(meta.get(CONFIG_KEY, "{}"))
    # the teacher's own section, as released, with the pattern added: the rest of the transformer is the same
    config["transformer"] = {**config.get("transformer", {}), "aiprod_pattern": student.cfg.pattern}
    meta[CONFIG_KEY] = json.dumps(config)
    save_safetensors_atomic(tensors, path, {**meta, **metadata})
