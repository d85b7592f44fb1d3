"""Hybridize in the editor: an AIPROD model distilled into one with more conv blocks (train/hybridize.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from aiprod_core.model import AIPROD, VideoModel
from aiprod_core.train.hybridize import HybridizeOptions, Hybridizer
from aiprod_core.train.options import RunOptions
from aiprod_core.train.run import RunFolder, run_name

from . import host
from .handles import ModelPatch
from .train import CATEGORY, outside_inference_mode, png_image

# the shipped model's pattern (ACACAC) with its middle attention block turned into a conv block
DEFAULT_PATTERN = "ACCCAC"


class Hybridize:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("AIPROD_MODEL", {"tooltip": "The teacher: an AIPROD model (from AIPROD Checkpoint Loader); "
                                                      "it stays as it is"}),
                "vae": ("AIPROD_VAE", {"tooltip": "Encodes the synthetic world's clips the student learns on"}),
                "text_encoder": ("AIPROD_TEXT_ENCODER", {"tooltip": "Encodes those clips' captions"}),
                "pattern": ("STRING", {"default": DEFAULT_PATTERN, "tooltip":
                                       "The student's blocks, one letter per teacher block: A keeps the attention "
                                       "block, C makes it a 3D-conv block (a teacher's C stays C; keep at least one A)"}),
                "steps_blockwise": ("INT", {"default": 30, "min": 0, "max": 100000, "tooltip":
                                            "Stage 1: each new conv block learns its teacher block's output. The "
                                            "template's few steps show the way; `aiprod hybridize` defaults to 200"}),
                "steps_end_to_end": ("INT", {"default": 30, "min": 0, "max": 100000, "tooltip":
                                             "Stage 2: the student's velocity learns the teacher's at the sampler's "
                                             "noise levels (200 by default in `aiprod hybridize`)"}),
                "learning_rate": ("FLOAT", {"default": 1e-3, "min": 1e-6, "max": 1e-1, "step": 1e-5, "round": False,
                                            "tooltip": "Learning rate of the new conv blocks"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip":
                                 "The new blocks' init, the clips drawn, noise"}),
                "name": ("STRING", {"default": "aiprod_hybrid", "tooltip":
                                    "The student is saved as models/diffusion_models/NAME.safetensors, its run folder "
                                    "is output/aiprod-hybridize/NAME (letters, digits, - _ . only)"}),
                "resume": ("BOOLEAN", {"default": True, "tooltip":
                                       "Continue an interrupted run of the same name and settings from its last state"}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("AIPROD_MODEL", "STRING", "IMAGE")
    RETURN_NAMES = ("model", "ckpt_name", "loss_curve")
    OUTPUT_NODE = True
    FUNCTION = "hybridize"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Turns attention blocks of an AIPROD model into 3D-conv blocks, distilled from the model itself "
                   "(block by block, then end to end on its velocity), saves the student into "
                   "models/diffusion_models and returns it for the sampler. Interrupting saves its state; queueing "
                   "again with resume on continues from it.")

    def hybridize(self, model: ModelPatch, vae, text_encoder, pattern, steps_blockwise, steps_end_to_end,
                  learning_rate, seed, name, resume, unique_id=None):
        if model.family is not AIPROD:
            raise ValueError(f"AIPROD Hybridize: {Path(model.source).name} is an LTX-2 model, which this node does not "
                             "distil (its clips are too large for the editor); run `aiprod hybridize --model "
                             f"{Path(model.source).name} --text-encoder ...` on it, or load an AIPROD checkpoint here")
        name, pattern = run_name(name), pattern.strip().upper()
        folder = RunFolder(host.output_dir() / "aiprod-hybridize" / name)
        result = host.folder_dirs("diffusion_models")[0] / f"{name}.safetensors"
        total = steps_blockwise + steps_end_to_end
        progress = host.Progress(max(1, total))

        def on_step(row):
            host.send("aiprod.train", {"node": unique_id, "step": row["global_step"], "total": total,
                                        "loss": row["loss"], "phase": row["phase"]})
            progress.update(row["global_step"])  # raises ComfyUI's interrupt: the hybridizer saves first

        opts = HybridizeOptions(
            RunOptions(folder.path, seed=seed, name=name, result_path=result, checkpoint_every=max(10, total // 10),
                       log_every=1, progress=False, on_step=on_step),
            pattern, steps_blockwise=steps_blockwise, steps_end_to_end=steps_end_to_end, lr=learning_rate,
            device=str(host.torch_device()))
        settings = {"teacher": model.source, "pattern": pattern, "seed": seed, "steps_blockwise": steps_blockwise,
                    "steps_end_to_end": steps_end_to_end, "lr": learning_rate}
        mods = (model.backbone, vae, text_encoder)
        host.free_memory(2 * sum(host.module_bytes(m) for m in mods))  # the teacher and the student
        teacher = VideoModel(model.config, model.backbone, vae, text_encoder, None, model.source, True)
        result.parent.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.enable_grad():
            for m in mods:
                outside_inference_mode(m)
            hybridizer = Hybridizer(teacher, opts)  # checks the pattern before the folder is touched
            try:
                path = hybridizer.run(resume=folder.prepare(resume, settings))
            finally:
                for m in (*mods, hybridizer.student.backbone):
                    m.to("cpu")
        student = ModelPatch(hybridizer.student.backbone, hybridizer.student.config, str(path), preview=model.preview)
        image = png_image(folder.curve) if folder.curve.is_file() else torch.zeros(1, 64, 64, 3)
        return {"ui": {"text": [f"saved diffusion_models/{result.name} ({pattern}) after {total} steps"]},
                "result": (student, result.name, image)}
