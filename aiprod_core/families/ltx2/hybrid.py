"""An LTX-2 transformer made hybrid (`aiprod hybridize`): the student built from its teacher, and written as the
teacher's own file with the transformer replaced.

The student shares every teacher module outside the replaced blocks; each replaced position holds a fresh
`transformer.ConvBlock` that starts with the replaced block's MLP. Its file is the teacher's (single file or ComfyUI's split transformer) with the video
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
from .transformer import ConvBlock, LTX2VideoTransformer, is_audio_key


def student_transformer(teacher: LTX2VideoTransformer, pattern: str, replaced: list[int],
                        seed: int) -> LTX2VideoTransformer:
    """The teacher with a conv block at each replaced position. Every other module is the teacher's own, shared and
    not copied, so a student costs only its fresh blocks (a 19B teacher is not held twice). A fresh block is made
    from `seed` and starts with the MLP of the block it replaces: the conv takes over the two attentions, and the
    block's MLP, which reads their result, is the teacher's."""
    cfg: LTX2TransformerConfig = dataclasses.replace(teacher.cfg, pattern=pattern)
    cfg.validate()
    with torch.device("meta"):
        student = LTX2VideoTransformer(cfg)
    for name, child in teacher.named_children():
        if name != "transformer_blocks":
            setattr(student, name, child)
    student.scale_shift_table = teacher.scale_shift_table
    like = next(teacher.parameters())
    blocks = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, block in enumerate(teacher.transformer_blocks):
            if i in replaced:
                fresh = ConvBlock(cfg)
                fresh.ff.load_state_dict(block.ff.state_dict())
                block = fresh.to(like)
            blocks.append(block)
    student.transformer_blocks = torch.nn.ModuleList(blocks)
    return student.eval()


def save_hybrid(teacher_path: str | os.PathLike, student: LTX2VideoTransformer, path: str | os.PathLike,
                metadata: dict[str, str]) -> None:
    """The teacher's file with its video transformer replaced by `student`'s tensors and config (atomic)."""
    file = open_ltx2(teacher_path)
    stored = file.require("transformer")
    with safe_open(str(file.path), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        # the root the transformer's keys are stored under: the single file's, or none in a split transformer
        root = TRANSFORMER_ROOT if any(s.startswith(TRANSFORMER_ROOT) for s in stored.values()) else ""
        # the video transformer's tensors and their fp8 scales, which the student's replace
        video = {s for s in (*stored.values(), *file.aux) if s.startswith(root) and not is_audio_key(s[len(root):])}
        tensors = {k: f.get_tensor(k) for k in f.keys() if k not in video}  # noqa: SIM118
    tensors.update({root + k: v.detach().contiguous() for k, v in student.state_dict().items()})
    config = json.loads(meta.get(CONFIG_KEY, "{}"))
    # the teacher's own section, as released, with the pattern added: the rest of the transformer is the same
    config["transformer"] = {**config.get("transformer", {}), "aiprod_pattern": student.cfg.pattern}
    meta[CONFIG_KEY] = json.dumps(config)
    save_safetensors_atomic(tensors, path, {**meta, **metadata})
