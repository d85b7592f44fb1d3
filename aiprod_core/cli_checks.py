"""The `aiprod` command line checked before any model loads: a bad request costs a second, not a clip.

`check_request(args)` refuses what cannot work with a RequestError (the CLI prints it as one line and exits
with 2; OutputError and CheckpointError, both ValueErrors, are printed the same way) and returns notes for what will run but may surprise (an empty prompt, a --vram with no GPU to
apply it to). Each subcommand's checks share the helpers here: output paths and write permission
(outputs.py), model files by their content (checkpoint.check_safetensors), numbers, and text from argv.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from .checkpoint import check_safetensors
from .outputs import check_output_file, check_output_folder

SAFETENSORS = (".safetensors",)


class RequestError(ValueError):
    """An argument that cannot work; the message says what was given, what was expected and what to do."""


def check_text(text: str, what: str) -> None:
    """Refuse text that came from argv as bytes that are not UTF-8 (Python keeps them as lone surrogates, and
    the encoder would fail on them later), naming the byte as the user typed it."""
    try:
        text.encode("utf-8")
        return
    except UnicodeEncodeError as e:
        bad = e.start
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes as they came in
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start].decode("utf-8", "replace")[-24:]
        raise RequestError(f"{what} is not valid UTF-8: byte {e.start + 1} is 0x{raw[e.start]:02x}, after {before!r}; "
                           "the terminal or file is in another encoding (e.g. Latin-1): set it to UTF-8 or retype "
                           "the text") from None
    except UnicodeEncodeError:
        pass
    raise RequestError(f"{what} holds an unpaired surrogate at character {bad + 1}, which is not text; retype it")


def check_number(name: str, value: float | int | None, lo: float | None = None, hi: float | None = None,
                 above: bool = False, hint: str = "") -> None:
    """value (None: not given) is finite and in [lo, hi] (above: strictly more than lo)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise RequestError(f"{name} {value} is not a finite number" + (f" ({hint})" if hint else ""))
    low_ok = lo is None or (value > lo if above else value >= lo)
    if low_ok and (hi is None or value <= hi):
        return
    if lo is not None and hi is not None:
        want = f"{lo:g}..{hi:g}"
    elif lo is not None:
        want = f"{'more than' if above else 'at least'} {lo:g}"
    else:
        want = f"at most {hi:g}"
    raise RequestError(f"{name} {value:g} is out of range; expected {want}" + (f" ({hint})" if hint else ""))


def check_model(path: str | None, what: str = "--model") -> None:
    if path is not None:
        check_safetensors(path, what)


def check_input(path: str | None, what: str) -> None:
    """An input file exists and is a file."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise RequestError(f"{what} {path} is a folder; expected a file")
    if not p.is_file():
        raise RequestError(f"{what} {path}: no such file")


def lora_arg(text: str) -> tuple[str, float]:
    """"star.safetensors" or "star.safetensors:0.8" -> (path, strength)."""
    path, sep, strength = text.rpartition(":")
    if sep and not strength.startswith(("/", "\\")):  # not the colon of a Windows drive
        try:
            return path, float(strength)
        except ValueError as e:
            raise RequestError(f"--lora {text!r}: strength {strength!r} is not a number; write e.g. {path}:0.8") from e
    return text, 1.0


def _vram_note(vram: float | None) -> list[str]:
    import torch

    if vram is None or torch.cuda.is_available():
        return []
    return [f"--vram {vram:g} does not apply: there is no CUDA GPU here, so the run uses the CPU and its memory"]


def check_generate(args: argparse.Namespace) -> list[str]:
    from .flow import METHODS, parse_camera
    from .info import model_config
    from .video_io import check_video_output

    check_text(args.prompt, "the prompt")
    check_text(args.negative, "--negative")
    if args.image and args.extend:
        raise RequestError("--image and --extend both give the clip its first frames; use one of them")
    if args.motion_from and args.camera:
        raise RequestError("give either a reference clip (--motion-from) or a camera preset (--camera), not both")
    check_number("--steps", args.steps, 1)
    check_number("--cfg", args.cfg, 0, hint="1 = no guidance, 3 = the default; a negative scale steers away from "
                                            "the prompt and turns its colours around")
    for name in ("frames", "height", "width"):
        check_number(f"--{name}", getattr(args, name), 1)
    check_number("--fps", args.fps, 0, above=True)
    check_number("--shift", args.shift, 0, above=True)
    check_number("--vram", args.vram, 0, above=True, hint="GB of GPU memory")
    for name in ("flow_strength", "flow_start", "flow_end", "flow_pull", "warp_guidance", "warp_end", "image_strength"):
        check_number("--" + name.replace("_", "-"), getattr(args, name), 0, 1)
    check_number("--extend-context", args.extend_context, 0)
    if args.camera:
        try:
            parse_camera(args.camera)
        except ValueError as e:
            raise RequestError(f"--camera {args.camera}: {e}") from None
    if args.motion_from and args.flow_method not in METHODS:
        raise RequestError(f"--flow-method {args.flow_method!r} is unknown; choose one of {', '.join(METHODS)}")
    for what in ("image", "extend", "motion_from"):
        check_input(getattr(args, what), "--" + what.replace("_", "-"))
    check_model(args.model)
    for text in args.lora or ():
        check_safetensors(lora_arg(text)[0], "--lora")
    check_video_output(args.output, "-o")
    config = model_config(args.model, args.preset)  # the header only: the clip size is checked before the weights
    if args.upscale and config.upscaler is None:
        raise RequestError(f"--upscale: {args.model or config.name} has no latent upscaler; run without --upscale")
    try:
        config.vae.check_clip(args.frames or config.frames, args.height or config.height, args.width or config.width)
    except ValueError as e:
        raise RequestError(str(e)) from None
    notes = _vram_note(args.vram)
    if not args.prompt.strip():
        notes.append("the prompt is empty: the model draws its unconditional clip, what it makes of no text")
    return notes


def check_flow(args: argparse.Namespace) -> list[str]:
    from .flow import METHODS
    from .video_io import check_video_output

    check_input(args.video, "the video")
    if args.method not in METHODS:
        raise RequestError(f"--method {args.method!r} is unknown; choose one of {', '.join(METHODS)}")
    check_number("--max-frames", args.max_frames, 2, hint="a flow needs two frames")
    if args.preview is not None:
        check_video_output(args.preview, "--preview")
    if args.output is not None:
        check_output_file(args.output, SAFETENSORS, "-o")
    return []


def check_train(args: argparse.Namespace) -> list[str]:
    check_output_folder(args.out, "--out")
    check_model(args.model)
    check_input(args.phases, "--phases")
    check_input(args.preserve_prompts, "--preserve-prompts")
    if args.data is not None and not Path(args.data).exists():
        raise RequestError(f"--data {args.data}: no such folder or file")
    check_number("--lora-rank", args.lora_rank, 0)
    check_number("--lora-alpha", args.lora_alpha, 0, above=True)
    check_number("--steps-scale", args.steps_scale, 0, above=True)
    check_number("--checkpoint-every", args.checkpoint_every, 0, hint="0: only at phase ends and on a stop")
    check_number("--stop-after", args.stop_after, 1)
    check_number("--preserve-weight", args.preserve_weight, 0)
    check_number("--absolute-positions", args.absolute_positions, 0)
    check_number("--vram", args.vram, 0, above=True, hint="GB of GPU memory")
    return _vram_note(args.vram)


def check_export(args: argparse.Namespace) -> list[str]:
    check_safetensors(args.model, "the model")
    check_output_file(args.output, SAFETENSORS, "-o")
    return []


def check_run_workflow(args: argparse.Namespace) -> list[str]:
    check_input(args.workflow, "the workflow")
    check_output_folder(args.out, "-o")
    check_number("--timeout", args.timeout, 0, above=True)
    return []


def check_eval(args: argparse.Namespace) -> list[str]:
    if args.what == "words":
        check_safetensors(args.state, "the state")
        return []
    check_model(args.model)
    check_number("--steps", getattr(args, "steps", None), 1)
    check_number("--cfg", getattr(args, "cfg", None), 0)
    return []


def check_info(args: argparse.Namespace) -> list[str]:
    check_model(args.model)
    for name in ("frames", "height", "width"):
        check_number(f"--{name}", getattr(args, name), 1)
    check_number("--vram", args.vram, 0, above=True)
    return []


CHECKS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "generate": check_generate, "flow": check_flow, "train": check_train, "export": check_export,
    "run-workflow": check_run_workflow, "eval": check_eval, "info": check_info,
}


def check_request(args: argparse.Namespace) -> list[str]:
    """Every check of `args.command`; returns notes to print, raises RequestError for what cannot work."""
    check = CHECKS.get(args.command)
    return check(args) if check else []


def command_name(args: argparse.Namespace) -> str:
    """"aiprod generate", "aiprod flow extract": how an error line starts, as argparse's own errors do."""
    sub = getattr(args, "what", None) if args.command in ("flow", "eval") else None
    return " ".join(["aiprod", args.command, *([sub] if sub else [])])


def prompt_warnings(text_encoder, prompts: dict[str, str]) -> list[str]:
    """One warning per prompt (named by its key, e.g. "the prompt") that the encoder reads only in part."""
    return [t.warning(what) for what, text in prompts.items() if (t := text_encoder.truncation(text)).cut]
