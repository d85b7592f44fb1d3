"""Multilingual text -> CONDITIONING in ComfyUI's format."""

from __future__ import annotations

import logging

from aiprod_core.text import detect_script, to_conditioning

log = logging.getLogger(__name__)


class TextEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": ("AIPROD_TEXT_ENCODER", {"tooltip": "From an AIPROD loader"}),
            "text": ("STRING", {"multiline": True, "dynamicPrompts": True, "default": "a red circle moving to the left",
                                "tooltip": "The prompt, in any language. A text encoder reads a limited length "
                                           "(the built-in one counts UTF-8 bytes: a Chinese or Hindi letter takes "
                                           "three); the node names what it cut from a longer prompt"}),
        }}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "AIPROD"
    DESCRIPTION = ("Encodes a prompt in any language; the node shows the script it detected, and a warning naming "
                   "the words it did not read when the prompt is longer than the text encoder reads.")

    def encode(self, text_encoder, text):
        if text_encoder is None:
            raise ValueError("no text encoder reached this node: an AIPROD LoRA Loader passes one on only when its own "
                             "text_encoder input is connected; connect the loader's text encoder there")
        hidden, mask = text_encoder.encode([text])
        notes = [detect_script(text)] if text.strip() else []  # an empty prompt has no script to name
        cut = text_encoder.truncation(text)
        if cut.cut:
            warning = cut.warning("this prompt")
            log.warning("AIPROD Text Encode: %s", warning)
            notes.append(f"| warning: {warning}")
        return {"ui": {"text": notes}, "result": (to_conditioning(hidden.cpu(), mask.cpu()),)}
