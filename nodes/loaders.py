"""Loaders: the all-in-one checkpoint, each component on its own, and LoRAs."""

from __future__ import annotations

import functools
import logging

from aiprod_core.checkpoint import read_safetensors
from aiprod_core.eval.preview import preview_factors
from aiprod_core.model import AIPROD, load_component, load_model, model_family, read_model_config
from aiprod_core.models.lora import LoRA, has_text_adapters, text_lora_from
from aiprod_core.text.comfy_umt5 import load_comfy_umt5
from aiprod_core.text.lora import adapted_text_encoder

from . import host
from .handles import ModelPatch

CATEGORY = "AIPROD/loaders"
log = logging.getLogger(__name__)


NONE = "none"  # an optional file left out: the checkpoint's own component, or none


class CheckpointLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (host.list_files("diffusion_models"), {
            "tooltip": "An all-in-one AIPROD checkpoint from models/diffusion_models (the bundled aiprod-v2-tiny is listed too)"})}}

    RETURN_TYPES = ("AIPROD_MODEL", "AIPROD_VAE", "AIPROD_TEXT_ENCODER", "AIPROD_UPSCALER")
    RETURN_NAMES = ("model", "vae", "text_encoder", "upscaler")
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Loads every component of an AIPROD model from one file."

    def load(self, ckpt_name):
        files = _model_files(ckpt_name)
        if model_family(files["path"]) is not AIPROD:
            raise ValueError(f"{ckpt_name} is an LTX-2 file; load it with AIPROD LTX-2 Loader, which also takes its "
                             "Gemma 3 text encoder and the other files")
        return _load(files)


class LTX2Loader:
    """LTX-2 from the files as released or as ComfyUI users keep them split; a node of its own (rather than inputs
    of the checkpoint loader) so that workflows saved with the checkpoint loader keep their widgets."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "ckpt_name": (checkpoint_names(), {"tooltip":
                          "Lightricks' single file (ltx-2-19b-dev-fp8.safetensors and the other ltx-2-19b-* files, "
                          "in models/checkpoints), or ComfyUI's split transformer (models/diffusion_models)"}),
            "text_encoder": (text_encoder_names(), {"tooltip":
                             "Gemma 3 12B from models/text_encoders: gemma_3_12B_it_fp8_scaled.safetensors (or "
                             "another gemma_3_12B_it*.safetensors), or the Hugging Face folder google/gemma-3-12b-it"}),
        }, "optional": {
            "vae": ([NONE, *host.list_files("vae")], {"default": NONE, "tooltip":
                    "The video VAE from models/vae, for a split transformer; none: the checkpoint's own"}),
            "text_projection": ([NONE, *host.list_files("text_encoders")], {"default": NONE, "tooltip":
                                "LTX-2's text projection from models/text_encoders, for a split transformer; none: "
                                "the checkpoint's own"}),
            "upscaler": ([NONE, *host.list_files("latent_upscale_models")], {"default": NONE, "tooltip":
                         "The spatial upscaler from models/latent_upscale_models "
                         "(ltx-2-spatial-upscaler-x2-1.0.safetensors), for AIPROD Latent Upscale 2x; none: no "
                         "upscaler output"}),
        }}

    RETURN_TYPES = ("AIPROD_MODEL", "AIPROD_VAE", "AIPROD_TEXT_ENCODER", "AIPROD_UPSCALER")
    RETURN_NAMES = ("model", "vae", "text_encoder", "upscaler")
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Loads Lightricks' LTX-2 (video only; the audio stream's weights are not read) with Gemma 3 for "
                   "prompts; every AIPROD node takes it.")

    @classmethod
    def VALIDATE_INPUTS(cls, ckpt_name, text_encoder, vae=NONE, text_projection=NONE, upscaler=NONE):
        """Before anything runs: every file named is there and holds what its input needs (headers only), or one
        message that says which file to put in which folder."""
        try:
            files = _model_files(ckpt_name, text_encoder, vae, text_projection, upscaler)
            read_model_config(files.pop("path"), need_text_encoder=True, names=INPUT_NAMES, **files)
        except (ValueError, OSError) as e:  # FileNotFoundError and the LTX-2 file checks' errors among them
            return str(e)
        return True

    def load(self, ckpt_name, text_encoder, vae=NONE, text_projection=NONE, upscaler=NONE):
        files = _model_files(ckpt_name, text_encoder, vae, text_projection, upscaler)
        if model_family(files["path"]) is AIPROD:
            raise ValueError(f"{ckpt_name} is an AIPROD checkpoint, not LTX-2; load it with AIPROD Checkpoint Loader")
        return _load(files)


def _load(files: dict) -> tuple:
    files = dict(files)
    path = files.pop("path")
    dtypes = host.weight_dtype("diffusion"), host.weight_dtype("vae")
    extra = tuple(str(v) for v in files.values())  # the same checkpoint with other files is another model
    m = host.CACHE.get(path, lambda p: _load_model(p, *dtypes, files), *dtypes, *extra)
    preview = None
    if m.family is AIPROD:
        preview = host.CACHE.get(path, lambda _: preview_factors(m.vae), "preview", *extra)
    elif host.previews_shown():  # LTX-2's encoder takes seconds per still on a CPU: fitted on 4, and only if shown
        preview = host.CACHE.get(path, lambda _: preview_factors(m.vae, images=4), "preview", *extra)
    host.free_memory(sum(host.module_bytes(x) for x in (m.backbone, m.vae) if x is not None))
    patch = ModelPatch(m.backbone, m.config, str(path), preview=preview, family=m.family)
    return (patch, m.vae, m.text_encoder, m.upscaler)


# the loader's inputs, as messages from the LTX-2 file checks name them
INPUT_NAMES = {"checkpoint": "ckpt_name", "text_encoder": "text_encoder", "vae": "vae",
               "text_projection": "text_projection", "upscaler": "upscaler"}
# where each input's file goes, for the message about files that are not there
WHERE = {"ckpt_name": ("checkpoints", "diffusion_models"), "text_encoder": ("text_encoders",), "vae": ("vae",),
         "text_projection": ("text_encoders",), "upscaler": ("latent_upscale_models",)}


def checkpoint_names() -> list[str]:
    """LTX-2's files in checkpoints/ (Lightricks' single files) and diffusion_models/ (ComfyUI's split
    transformer), told from the other models kept there by their headers."""
    names = set()
    for kind in ("checkpoints", "diffusion_models"):
        for name in host.list_files(kind):
            path = host.resolve(kind, name)
            stat = path.stat()
            if _is_ltx2(str(path), stat.st_mtime_ns, stat.st_size):
                names.add(name)
    return sorted(names)


@functools.lru_cache(maxsize=1024)
def _is_ltx2(path: str, mtime_ns: int, size: int) -> bool:
    """model_family read once per file version: the editor asks for the lists on every refresh."""
    return model_family(path) is not AIPROD


def text_encoder_names() -> list[str]:
    return [*host.list_files("text_encoders"), *host.list_model_folders("text_encoders")]


def _find(name: str, kinds: tuple[str, ...], folders: bool = False):
    for kind in kinds:
        try:
            return host.resolve(kind, name, folders)
        except FileNotFoundError:
            continue
    return None


def _model_files(ckpt_name, text_encoder=NONE, vae=NONE, text_projection=NONE, upscaler=NONE) -> dict:
    """load_model's keywords from the loader's inputs, each resolved inside its model folders. Raises one
    FileNotFoundError naming every missing file and the folder it goes in."""
    given = {"ckpt_name": ckpt_name, "text_encoder": text_encoder, "vae": vae, "text_projection": text_projection,
             "upscaler": upscaler}
    found, missing = {}, []
    for name, value in given.items():
        if value in (None, "", NONE):
            continue
        path = _find(value, WHERE[name], folders=name == "text_encoder")
        if path is None:
            missing.append(f"{value} in {' or '.join(f'models/{k}' for k in WHERE[name])} ({name})")
        found[name] = path
    if missing:
        raise FileNotFoundError(f"model files not found in the model folders: put {'; '.join(missing)}, then press R in the editor to "
                                f"refresh the lists (looked in {', '.join(_searched(given))})")
    return {"path": found.pop("ckpt_name"), **found}


def _searched(given: dict) -> list[str]:
    kinds = dict.fromkeys(k for name, v in given.items() if v not in (None, "", NONE) for k in WHERE[name])
    return [str(d) for k in kinds for d in host.folder_dirs(k)]


def _load_model(path, dtype, vae_dtype, files: dict):
    log.info("AIPROD: loading %s, backbone and upscaler in %s, VAE in %s", path.name, str(dtype)[6:], str(vae_dtype)[6:])
    return load_model(path, dtype=dtype, vae_dtype=vae_dtype, **files)


def _component_loader(kind: str, component: str, out_type: str, what: str):
    class Loader:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"name": (host.list_files(kind), {"tooltip": f"{what} from models/{kind}"})}}

        RETURN_TYPES = (out_type,)
        FUNCTION = "load"
        CATEGORY = CATEGORY
        DESCRIPTION = f"Loads the {what} from an AIPROD checkpoint (all-in-one or that component alone)."

        def load(self, name):
            path = host.resolve(kind, name)
            dtype = host.weight_dtype("vae" if component == "vae" else "diffusion")
            config, module = host.CACHE.get(path, lambda p: load_component(p, component, dtype), component, dtype)
            host.free_memory(host.module_bytes(module))
            if component == "backbone":
                return (ModelPatch(module, config, str(path)),)
            return (module,)

    Loader.__name__ = f"{component.title().replace('_', '')}Loader"
    return Loader


BackboneLoader = _component_loader("diffusion_models", "backbone", "AIPROD_MODEL", "hybrid backbone")
VAELoader = _component_loader("vae", "vae", "AIPROD_VAE", "causal video VAE")
UpscalerLoader = _component_loader("latent_upscale_models", "upscaler", "AIPROD_UPSCALER", "2x latent upscaler")


def _load_text(path):
    _, meta = read_safetensors(path, load_tensors=False)
    if "aiprod.config" in meta:
        return load_component(path, "text_encoder")[1]
    return load_comfy_umt5(str(path), max_length=512)  # a ComfyUI umT5 file (e.g. umt5_xxl_fp8_e4m3fn_scaled)


class TextEncoderLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": (host.list_files("text_encoders"), {
            "tooltip": "An AIPROD text encoder, or a ComfyUI umT5 file (umt5_xxl_*.safetensors) for 4096-wide models"})}}

    RETURN_TYPES = ("AIPROD_TEXT_ENCODER",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, name):
        return (host.CACHE.get(host.resolve("text_encoders", name), _load_text),)


class LoraLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("AIPROD_MODEL", {"tooltip": "The model to adapt; LoRA loaders chain"}),
            "lora_name": (host.list_files("loras"), {"tooltip": "A LoRA from models/loras trained for this model"}),
            "strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05,
                                   "tooltip": "How much of the LoRA to apply; 0 turns it off"}),
        }, "optional": {
            "text_encoder": ("AIPROD_TEXT_ENCODER", {"tooltip":
                             "For a LoRA trained with its text encoder: connect it here and encode the prompts with "
                             "this node's text_encoder output"}),
        }}

    RETURN_TYPES = ("AIPROD_MODEL", "AIPROD_TEXT_ENCODER")
    RETURN_NAMES = ("model", "text_encoder")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, model: ModelPatch, lora_name, strength, text_encoder=None):
        path = host.resolve("loras", lora_name)
        if model.family is not AIPROD:  # LTX-2's published layout (ComfyUI's, PEFT's or ltx-trainer's keys)
            lora, _ = host.CACHE.get(path, lambda p: model.family.read_lora(model, p), id(model.backbone))
            return model.with_lora(lora, strength, lora_name), text_encoder  # its LoRAs leave Gemma as it is
        sd, _ = host.CACHE.get(path, read_safetensors)
        lora = LoRA.from_comfy_state_dict(sd, model.backbone, source=str(path))
        return model.with_lora(lora, strength, lora_name), with_text_lora(sd, text_encoder, strength, lora_name)


def with_text_lora(sd: dict, text_encoder, strength: float, name: str):
    """The text encoder reading prompts through a LoRA file's text-encoder adapters (it shares the loaded encoder's
    weights, which other branches read unchanged), or as it is when the LoRA has none."""
    if text_encoder is None:
        if has_text_adapters(sd):
            log.warning("%s adapts the text encoder too: connect the text encoder to the LoRA loader and encode the "
                        "prompts with its output, or the LoRA's new words keep their old meaning", name)
        return None
    return adapted_text_encoder(text_encoder, [(text_lora_from(sd, text_encoder, source=name), strength)])
