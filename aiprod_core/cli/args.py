"""Argument groups that several `aiprod` subcommands share, and the values they turn into: a flag reads and
checks the same wherever it appears."""

from __future__ import annotations

import argparse

from ..config import PRESETS


def add_model_args(p: argparse.ArgumentParser, default: str = "the embedded aiprod-v2-tiny model") -> None:
    """Model source: --model FILE or --preset NAME."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", help=f"a .safetensors checkpoint (default: {default})")
    g.add_argument("--preset", choices=sorted(PRESETS), help="build a preset with random weights instead")


# the files of an LTX-2 model besides --model: load_model's keyword -> flag
FAMILY_FILES = {"text_encoder": "--text-encoder", "vae": "--vae", "text_projection": "--text-projection",
                "upscaler": "--upscaler"}
FILE_FLAGS = {"checkpoint": "--model", **FAMILY_FILES}


def add_family_file_args(p: argparse.ArgumentParser) -> None:
    """The files an LTX-2 model takes beside --model (an AIPROD checkpoint carries all its components)."""
    g = p.add_argument_group("LTX-2 files", "an LTX-2 --model (Lightricks' single file, or ComfyUI's "
                             "diffusion_models/ file) reads these beside it")
    g.add_argument("--text-encoder", metavar="FILE|FOLDER", help="Gemma 3 12B: ComfyUI's gemma_3_12B_it*.safetensors "
                   "or the Hugging Face folder (needed to generate)")
    g.add_argument("--vae", metavar="FILE", help="the video VAE, when --model is ComfyUI's split transformer")
    g.add_argument("--text-projection", metavar="FILE", help="LTX-2's text projection file (ComfyUI's "
                   "text_encoders/ file beside Gemma), when --model has no text connector")
    g.add_argument("--upscaler", metavar="FILE", help="LTX-2's spatial upscaler, for --upscale "
                   "(ltx-2-spatial-upscaler-x2-1.0.safetensors)")


def family_files(args: argparse.Namespace) -> dict[str, str | None]:
    """The --text-encoder, --vae, --text-projection and --upscaler files, as load_model's keywords."""
    return {key: getattr(args, key, None) for key in FAMILY_FILES}


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="the backbone's, upscaler's and VAE's weights: auto = bf16 on a CUDA GPU that has it (what "
                        "`aiprod info --plan` plans for), fp32 elsewhere; bf16 on the CPU too (faster on CPUs with "
                        "native bf16, e.g. avx512_bf16)")


def add_memory_args(p: argparse.ArgumentParser, default_vram: float | None = None,
                    dtypes: tuple[str, ...] = ("fp8",)) -> None:
    """Placement: the GPU memory budget and the backbone's weight storage."""
    p.add_argument("--vram", type=float, default=default_vram,
                   help="GPU memory budget in GB" + (f" (default {default_vram:g})" if default_vram else " (default: what is free)"))
    p.add_argument("--weight-dtype", choices=dtypes,
                   help="backbone weight storage (default: as loaded; fp8 only when the plan needs it)")


def add_clip_args(p: argparse.ArgumentParser) -> None:
    """Clip size: --frames, --height, --width (each defaults to the model's)."""
    p.add_argument("--frames", type=int, help="frames, 1 + k * temporal compression (default: the model's)")
    p.add_argument("--height", type=int, help="pixels, a multiple of the spatial compression")
    p.add_argument("--width", type=int, help="pixels, a multiple of the spatial compression")


MOTION_FLAGS = ("flow_strength", "flow_start", "flow_end", "flow_pull", "warp_guidance", "warp_end")


def add_motion_args(p: argparse.ArgumentParser) -> None:
    """Motion guidance: the six settings of one MotionGuidance value (see motion())."""
    p.add_argument("--flow-strength", type=float, default=1.0,
                   help="motion guidance strength 0..1 (0 = plain noise, 1 = fully warped noise)")
    p.add_argument("--flow-start", type=float, default=0.0, help="first fraction of the steps guided (0 = from the start)")
    p.add_argument("--flow-end", type=float, default=0.0,
                   help="steps before this fraction keep the noise on the warped noise (0 = the initial noise only)")
    p.add_argument("--flow-pull", type=float, default=1.0,
                   help="how far each of those steps pulls the noise onto the warped noise, 0..1 (1 = all the way)")
    p.add_argument("--warp-guidance", type=float, default=1.0,
                   help="warp guidance 0..1 (0 = off): how far each step moves the clip's frames onto the first frame "
                        "carried along the flow")
    p.add_argument("--warp-end", type=float, default=0.75, help="fraction of the steps that warp guidance applies to")


def add_json_arg(p: argparse.ArgumentParser, text: str = "print JSON") -> None:
    p.add_argument("--json", action="store_true", help=text)


def add_quiet_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def motion(args: argparse.Namespace, flow=None):
    """The motion-guidance options as one value, checked once (a flow given, or None)."""
    from ..conditioning import MotionGuidance  # imported when a command runs: see load_for_inference

    return MotionGuidance(flow=flow, **{name: getattr(args, name) for name in MOTION_FLAGS})


def load_for_inference(args: argparse.Namespace, offload: str = "auto"):
    """The model of --model / --preset in the dtype --precision picks for where it will run."""
    # The library's upper layers are imported when a command runs, not when the parser is built: `aiprod --help`
    # and a refused request answer without importing the model, the sampler and the pipeline.
    from ..memory.engine import compute_device, precision_dtype
    from ..model import load_model

    return load_model(args.model, args.preset, dtype=precision_dtype(args.precision, compute_device(offload)),
                      **family_files(args))
