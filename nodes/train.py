"""Training in the editor: a dataset, and the curriculum LoRA trainer that saves into models/loras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aiprod_core.model import VideoModel
from aiprod_core.models.lora import DEFAULT_TARGETS, TEXT_TARGETS, apply_loras, parse_targets
from aiprod_core.text.lora import adapted_text_encoder
from aiprod_core.train.data import WorldData
from aiprod_core.train.folder import VideoFolderData, list_clips
from aiprod_core.train.options import LoRAOptions, Preservation, RunOptions, TrainOptions, TrainPlacement
from aiprod_core.train.phases import Phase, lora_recipe
from aiprod_core.train.run import RunFolder, run_name
from aiprod_core.train.trainer import Trainer, prompt_lines
from aiprod_core.world import ALL_SHAPES, WorldSpec

from . import host
from .handles import Dataset, ModelPatch

CATEGORY = "AIPROD/training"
SOURCES = ("synthetic world", "folder")


class VideoDataset:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "source": (SOURCES, {"default": "synthetic world", "tooltip":
                                 "synthetic world: procedurally rendered captioned clips; folder: your own clips"}),
            "folder": ("STRING", {"default": "aiprod_clips", "tooltip":
                                  "For source=folder: a folder in ComfyUI's input directory holding mp4/webm/mov clips "
                                  "with same-name .txt captions, or a .jsonl of {\"path\", \"caption\"} there"}),
            "shapes": ("STRING", {"default": "star", "tooltip":
                                  f"For the synthetic world: comma-separated shapes to show, from {', '.join(ALL_SHAPES)}"}),
            "frames": ("INT", {"default": 17, "min": 1, "max": 257, "step": 4, "tooltip": "Clip length: 1 + 4k frames"}),
            "width": ("INT", {"default": 64, "min": 16, "max": 2048, "step": 8, "tooltip": "Training width in pixels"}),
            "height": ("INT", {"default": 64, "min": 16, "max": 2048, "step": 8, "tooltip": "Training height in pixels"}),
        }}

    RETURN_TYPES = ("AIPROD_DATASET",)
    RETURN_NAMES = ("dataset",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Training clips for the LoRA trainer: your own captioned clips, or the synthetic world."

    def load(self, source, folder, shapes, frames, width, height):
        if source not in SOURCES:
            raise ValueError(f"source={source!r}; expected one of {SOURCES}")
        world: dict = {"frames": frames, "height": height, "width": width}
        if source == "folder":
            path = host.inside(host.input_dir(), folder.strip(), "dataset folder")
            if not path.exists():
                raise FileNotFoundError(f"dataset folder {folder!r} not found in {host.input_dir()}; put your clips "
                                        "and their .txt captions in a folder there")
            if not list_clips(path):
                raise ValueError(f"dataset folder {path} holds no captioned clips; expected mp4/webm/mov files, each "
                                 "with a same-name .txt caption")
            WorldSpec(**world)  # checks frames and size
            return (Dataset(str(path), frames, height, width, world),)
        names = tuple(s.strip() for s in shapes.split(",") if s.strip())
        unknown = [s for s in names if s not in ALL_SHAPES]
        if not names or unknown:
            raise ValueError(f"shapes {shapes!r}: unknown {unknown or 'none given'}; expected some of {', '.join(ALL_SHAPES)}")
        world["shapes"] = names
        WorldSpec(**world)
        return (Dataset(None, frames, height, width, world),)


def outside_inference_mode(module: torch.nn.Module) -> None:
    """ComfyUI loads weights under torch.inference_mode; autograd cannot save such tensors, so swap in copies."""
    for m in module.modules():
        for n, p in list(m._parameters.items()):
            if p is not None and p.is_inference():
                m._parameters[n] = torch.nn.Parameter(p.clone(), requires_grad=p.requires_grad)
        for n, b in list(m._buffers.items()):
            if b is not None and b.is_inference():
                m._buffers[n] = b.clone()


def png_image(png) -> torch.Tensor:
    """A PNG file -> IMAGE [1,H,W,3]."""
    return torch.from_numpy(np.asarray(Image.open(png).convert("RGB"), dtype=np.float32) / 255)[None]


class LoraTrainer:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("AIPROD_MODEL", {"tooltip": "The frozen base model (LoRAs already on it stay applied while training)"}),
                "vae": ("AIPROD_VAE", {"tooltip": "Encodes the training clips to latents"}),
                "text_encoder": ("AIPROD_TEXT_ENCODER", {"tooltip": "Encodes the captions (frozen unless "
                                                                   "train_text_encoder; embeddings are then cached)"}),
                "dataset": ("AIPROD_DATASET", {"tooltip": "From AIPROD Video Dataset"}),
                "steps": ("INT", {"default": 300, "min": 2, "max": 100000, "tooltip":
                                  "Total optimiser steps: a third on short clips, the rest at full length. The LoRA "
                                  "template's 90 are a demonstration (about 3 minutes on 2 CPU cores) and teach little. "
                                  "To train for real give it thousands: recipes/lora.json (600 steps of 4 clips; paste "
                                  "it into phases) is the start, the star of docs/training.md took 3,000; or train "
                                  "outside the editor with `aiprod train --data CLIPS --name NAME --out runs/NAME`"}),
                "rank": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip": "LoRA rank (alpha = rank)"}),
                "learning_rate": ("FLOAT", {"default": 1e-3, "min": 1e-6, "max": 1e-1, "step": 1e-5, "round": False,
                                            "tooltip": "Peak learning rate of the first phase (the second uses half)"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": "Data order, noise and init"}),
                "name": ("STRING", {"default": "aiprod_lora", "tooltip":
                                    "The LoRA is saved as models/loras/NAME.safetensors (letters, digits, - _ . only)"}),
                "resume": ("BOOLEAN", {"default": True, "tooltip":
                                       "Continue an interrupted run of the same name and settings from its last checkpoint"}),
            },
            "optional": {
                "phases": ("STRING", {"default": "", "multiline": True, "tooltip":
                                      "A JSON phase list (as in recipes/*.json) replacing the built-in LoRA curriculum; "
                                      "its steps and learning rates are used as written"}),
                "targets": ("STRING", {"default": ",".join(DEFAULT_TARGETS), "tooltip":
                                       "Comma-separated linear layers the LoRA adapts, matched on the end of their path "
                                       "(attn1: self-attention, attn2: text cross-attention, ff: feed-forward)"}),
                "preserve_prompts": ("STRING", {"default": "", "multiline": True, "tooltip":
                                                "Prompts whose clips the LoRA should leave as the base model draws them, "
                                                "one per line: each step pulls the LoRA's answer to them back to the "
                                                "base model's (output preservation; each step costs about twice as much)"}),
                "preserve_weight": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.05, "tooltip":
                                              "Weight of the preservation loss: higher keeps those prompts closer to the "
                                              "base model and teaches the new subject more slowly"}),
                "precision": (["auto", "bf16", "fp32"], {"default": "auto", "tooltip":
                              "auto: bf16 autocast on GPUs that have it, fp32 on the CPU; bf16: on the CPU too (about "
                              "0.78x the step time on CPUs with native bf16); fp32: always"}),
                "train_text_encoder": ("BOOLEAN", {"default": False, "tooltip":
                                       "The LoRA adapts the text encoder too, so that a new word gets a meaning of its "
                                       "own; encode the prompts with this node's text_encoder output"}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("AIPROD_MODEL", "IMAGE", "STRING", "AIPROD_TEXT_ENCODER")
    RETURN_NAMES = ("model", "loss_curve", "lora_name", "text_encoder")
    OUTPUT_NODE = True
    FUNCTION = "train"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Trains a LoRA with the curriculum trainer, saves it into models/loras and returns the model with it "
                   "applied. Interrupting saves a checkpoint; queueing again with resume on continues from it. The "
                   "template's few steps only show the way; a LoRA that learns its subject takes thousands (see steps).")

    def train(self, model: ModelPatch, vae, text_encoder, dataset: Dataset, steps, rank, learning_rate, seed, name,
              resume, phases="", targets="", preserve_prompts="", preserve_weight=1.0, precision="auto",
              train_text_encoder=False, unique_id=None):
        if model.family.lora_only and train_text_encoder:
            raise ValueError(f"AIPROD LoRA Trainer: {Path(model.source).name} is an {model.family.title} model, whose "
                             "text encoder (Gemma 3 with its connector) takes no adapters; turn train_text_encoder off")
        try:
            model.config.vae.check_clip(dataset.frames, dataset.height, dataset.width)
        except ValueError as e:
            raise ValueError(f"AIPROD LoRA Trainer: the dataset's clips do not fit this {model.family.title} model's "
                             f"VAE: {e}; change the dataset's frames, width or height") from None
        name = run_name(name)
        plan = _phases(dataset, steps, learning_rate, phases, model)
        layers = parse_targets(targets) or DEFAULT_TARGETS
        folder = RunFolder(host.output_dir() / "aiprod-train" / name)
        result = host.folder_dirs("loras")[0] / f"{name}.safetensors"
        keep = prompt_lines(preserve_prompts)
        total = sum(p.steps for p in plan)
        progress = host.Progress(total)

        def on_step(row):
            host.send("aiprod.train", {"node": unique_id, "step": row["global_step"], "total": total,
                                        "loss": row["loss"], "phase": row["phase"]})
            progress.update(row["global_step"])  # raises ComfyUI's interrupt: the trainer saves first

        mods = (model.backbone, vae, text_encoder)
        host.free_memory(sum(host.module_bytes(m) for m in mods))
        budget = host.memory_budget()  # --reserve-vram kept free; --lowvram / --novram stream every frozen block
        opts = TrainOptions(
            RunOptions(folder.path, seed=seed, name=name, result_path=result, checkpoint_every=max(10, total // 10),
                       log_every=1, validate=False, progress=False, on_step=on_step),
            lora=LoRAOptions(rank, float(rank), layers, TEXT_TARGETS if train_text_encoder else ()),
            placement=TrainPlacement(str(host.torch_device()), budget.offload, budget.vram_gb, precision),
            preservation=Preservation(keep, preserve_weight))
        settings = {"base": model.source, "loras": [n for _, _, n in model.loras], "dataset": repr(dataset),
                    "rank": rank, "targets": list(layers), "seed": seed, "phases": [repr(p) for p in plan],
                    "preserve_prompts": list(keep), "preserve_weight": preserve_weight, "precision": precision,
                    "train_text_encoder": train_text_encoder}
        resume = folder.prepare(resume, settings)  # a different run under this name starts over
        result.parent.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.enable_grad():
            for m in mods:
                outside_inference_mode(m)
            vm = VideoModel(model.config, model.backbone, vae, text_encoder, None, model.source, True,
                            family=model.family)
            data = WorldData(seed) if dataset.folder is None else VideoFolderData(
                dataset.folder, vm, cache_dir=folder.cache, seed=seed)
            try:
                with apply_loras(model.backbone, [(lo, s) for lo, s, _ in model.loras]):
                    Trainer(vm, plan, opts, data).run(resume=resume)
            finally:
                for m in mods:
                    m.to("cpu")
                    m.requires_grad_(False)
            lora, text_lora = model.family.read_lora(vm, result)
        image = png_image(folder.curve) if folder.curve.is_file() else torch.zeros(1, 64, 64, 3)
        return {"ui": {"text": [f"saved loras/{result.name} after {total} steps"]},
                "result": (model.with_lora(lora, 1.0, result.name), image, result.name,
                           adapted_text_encoder(text_encoder, [(text_lora, 1.0)]))}


def _phases(dataset: Dataset, steps: int, learning_rate: float, phases_json: str, model: ModelPatch) -> list[Phase]:
    if phases_json.strip():
        try:
            raw = json.loads(phases_json)
            plan = [Phase(**p) for p in raw]
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise ValueError(f"phases: not a valid JSON phase list ({e}); expected e.g. "
                             '[{"name": "lora", "steps": 300, "lr": 0.001, "batch": 4}]') from e
    else:
        plan = lora_recipe(steps, dataset.frames, dataset.height, dataset.width,
                           model.config.vae.temporal_compression, model.family.lora_batch)
        for i, p in enumerate(plan):
            p.lr = learning_rate / (1 + i)
    for p in plan:
        p.stage = "backbone"
        p.world = {**dataset.world, **p.world}  # the phase's own fields (e.g. shorter clips) win
        p.warmup = min(p.warmup, max(1, p.steps // 5))
    return plan
