"""Multilingual text -> CONDITIONING in ComfyUI's format."""

from __future__ import annotations

from aiprod_core.text import detect_script, to_conditioning


class TextEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": ("AIPROD_TEXT_ENCODER", {"tooltip": "From an AIPROD loader"}),
            "text": ("STRING", {"multiline": True, "dynamicPrompts": True, "default": "a red circle moving to the left",
                                "tooltip": "The prompt, in any language"}),
        }}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "AIPROD"
    DESCRIPTION = "Encodes a prompt in any language; the node shows the script it detected."

    def encode(self, text_encoder, text):
        if text_encoder is None:
            raise ValueError("no text encoder reached this node: an AIPROD LoRA Loader passes one on only when its own "
                             "text_encoder input is connected; connect the loader's text encoder there")
        hidden, mask = text_encoder.encode([text])
        return {"ui": {"text": [detect_script(text)]}, "result": (to_conditioning(hidden.cpu(), mask.cpu()),)}
