"""Loaders: the all-in-one checkpoint, each component on its own, and LoRAs."""

from __future__ import annotations

import logging

from aiprod_core.checkpoint import read_safetensors
from aiprod_core.eval.preview import preview_factors
from aiprod_core.model import load_component, load_model
from aiprod_core.models.lora import LoRA, has_text_adapters, text_lora_from
from aiprod_core.text.comfy_umt5 import load_comfy_umt5
from aiprod_core.text.lora import adapted_text_encoder

from . import comfy
from .handles import ModelPatch

CATEGORY = "AIPROD/loaders"
log = logging.getLogger(__name__)


class CheckpointLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (comfy.list_files("diffusion_models"), {
            "tooltip": "An all-in-one AIPROD checkpoint from models/diffusion_models (the bundled aiprod-v2-tiny is listed too)"})}}

    RETURN_TYPES = ("AIPROD_MODEL", "AIPROD_VAE", "AIPROD_TEXT_ENCODER", "AIPROD_UPSCALER")
    RETURN_NAMES = ("model", "vae", "text_encoder", "upscaler")
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Loads every component of an AIPROD model from one file."

    def load(self, ckpt_name):
        path = comfy.resolve("diffusion_models", ckpt_name)
        dtypes = comfy.weight_dtype("diffusion"), comfy.weight_dtype("vae")
        m = comfy.CACHE.get(path, lambda p: _load_model(p, *dtypes), *dtypes)
        preview = comfy.CACHE.get(path, lambda _: preview_factors(m.vae), "preview")
        comfy.free_memory(sum(comfy.module_bytes(x) for x in (m.backbone, m.vae) if x is not None))
        return (ModelPatch(m.backbone, m.config, str(path), preview=preview), m.vae, m.text_encoder, m.upscaler)


def _load_model(path, dtype, vae_dtype):
    log.info("AIPROD: loading %s, backbone and upscaler in %s, VAE in %s", path.name, str(dtype)[6:], str(vae_dtype)[6:])
    return load_model(path, dtype=dtype, vae_dtype=vae_dtype)


def _component_loader(kind: str, component: str, out_type: str, what: str):
    class Loader:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"name": (comfy.list_files(kind), {"tooltip": f"{what} from models/{kind}"})}}

        RETURN_TYPES = (out_type,)
        FUNCTION = "load"
        CATEGORY = CATEGORY
        DESCRIPTION = f"Loads the {what} from an AIPROD checkpoint (all-in-one or that component alone)."

        def load(self, name):
            path = comfy.resolve(kind, name)
            dtype = comfy.weight_dtype("vae" if component == "vae" else "diffusion")
            config, module = comfy.CACHE.get(path, lambda p: load_component(p, component, dtype), component, dtype)
            comfy.free_memory(comfy.module_bytes(module))
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
        return {"required": {"name": (comfy.list_files("text_encoders"), {
            "tooltip": "An AIPROD text encoder, or a ComfyUI umT5 file (umt5_xxl_*.safetensors) for 4096-wide models"})}}

    RETURN_TYPES = ("AIPROD_TEXT_ENCODER",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, name):
        return (comfy.CACHE.get(comfy.resolve("text_encoders", name), _load_text),)


class LoraLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("AIPROD_MODEL", {"tooltip": "The model to adapt; LoRA loaders chain"}),
            "lora_name": (comfy.list_files("loras"), {"tooltip": "A LoRA from models/loras trained for this model"}),
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
        path = comfy.resolve("loras", lora_name)
        sd, _ = comfy.CACHE.get(path, read_safetensors)
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
