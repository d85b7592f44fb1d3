"""`aiprod generate`: text (and optionally a picture, a clip to extend, a motion to follow) to a video file."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from ..checkpoint import check_safetensors
from .args import (
    FILE_FLAGS,
    MOTION_FLAGS,
    add_clip_args,
    add_family_file_args,
    add_memory_args,
    add_model_args,
    add_motion_args,
    add_precision_arg,
    add_quiet_arg,
    family_files,
    load_for_inference,
    motion,
)
from .checks import (
    RequestError,
    check_input,
    check_model,
    check_number,
    check_text,
    command_name,
    lora_arg,
    prompt_warnings,
    vram_note,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="text -> video file (.mp4, .webm, .webp or .gif)")
    g.add_argument("prompt", help="the prompt, in any language")
    g.add_argument("-o", "--output", default="aiprod.mp4", help="output file; the extension picks the format")
    g.add_argument("--negative", default="", help="negative prompt for classifier-free guidance")
    add_clip_args(g)
    g.add_argument("--steps", type=int, help="sampling steps (default 20; a distilled LTX-2 model: its 8 "
                   "distilled sigmas)")
    g.add_argument("--cfg", type=float, help="classifier-free guidance scale (1 = off; default 3, a distilled "
                   "LTX-2 model 1)")
    g.add_argument("--stg", type=float, default=0.0, help="LTX-2 models: spatio-temporal guidance scale, which skips "
                   "the self-attention of block 29 in one more pass a step (Lightricks' default 1; 0 = off)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--sampler", default="euler", choices=["euler", "heun"])
    g.add_argument("--shift", type=float, help="override the token-count sigma shift")
    g.add_argument("--upscale", action="store_true", help="2x latent upscale then refine")
    g.add_argument("--refine-lora", action="append", metavar="FILE[:STRENGTH]",
                   help="with --upscale: apply a LoRA in the refinement after the upscale only (LTX-2 dev: the "
                        "distilled LoRA, as Lightricks' two-stage pipeline); repeat to stack")
    g.add_argument("--distilled", choices=["yes", "no"], help="LTX-2 models: whether the transformer is distilled "
                   "(8 fixed sigmas, no guidance); default: yes when its file name says 'distilled'")
    g.add_argument("--fps", type=float, help="frames per second of the file, which an LTX-2 model also samples for "
                   "(default: the model's)")
    add_quiet_arg(g)
    add_memory_args(g)
    g.add_argument("--offload", default="auto", choices=["auto", "stream", "none"],
                   help="auto: on a GPU, plan for its free memory (or --vram) and stream when needed; no effect on the CPU")
    g.add_argument("--lora", action="append", metavar="FILE[:STRENGTH]",
                   help="apply a LoRA (from aiprod train --lora-rank), at a strength (default 1); repeat to stack LoRAs")
    add_motion_args(g)
    g.add_argument("--image", metavar="FILE", help="image-to-video: start the clip with this picture (or continue "
                   "the first frames of this clip); resized and centre-cropped to the clip")
    g.add_argument("--image-strength", type=float, default=1.0,
                   help="how much of --image (or --extend) the first frames keep, 0..1 (1 = as given, 0 = ignored)")
    g.add_argument("--extend", metavar="CLIP", help="video extension: continue this clip; the new frames start from "
                   "its last ones and the output holds the clip, then the new frames (resized to the clip size)")
    g.add_argument("--extend-context", type=int, default=2, metavar="K",
                   help="with --extend: start from the clip's last 1 + K x temporal compression frames (default 2: "
                        "9 frames for the tiny model); --frames counts them too")
    g.add_argument("--motion-from", metavar="VIDEO", help="follow the motion of this clip (its optical flow)")
    g.add_argument("--camera", metavar="PRESET[:SPEED]", help="follow a camera move: pan-left/right, tilt-up/down, "
                   "zoom-in/out, rotate-cw/ccw, optionally with a speed (pan-left:1.5; 1 = default pace)")
    g.add_argument("--flow-method", default="dis-fast", help="optical flow of --motion-from: dis-ultrafast, dis-fast, "
                   "dis-medium, farneback or raft")
    add_model_args(g)
    add_family_file_args(g)
    add_precision_arg(g)
    g.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    # Imported when the command runs, not when the parser is built: `aiprod --help` and the other commands
    # start without OpenCV's flow code and the video writer.
    from ..flow import METHODS, parse_camera
    from ..info import model_config
    from ..video_io import check_video_output

    check_text(args.prompt, "the prompt")
    check_text(args.negative, "--negative")
    if args.image and args.extend:
        raise RequestError("--image and --extend both give the clip its first frames; use one of them")
    if args.motion_from and args.camera:
        raise RequestError("give either a reference clip (--motion-from) or a camera preset (--camera), not both")
    _check_numbers(args)
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
    for flag, texts in (("--lora", args.lora), ("--refine-lora", args.refine_lora)):
        for text in texts or ():
            check_safetensors(lora_arg(text, flag)[0], flag)
    if args.refine_lora and not args.upscale:
        raise RequestError("--refine-lora applies in the refinement after the 2x upscale; add --upscale, or give "
                           "the LoRA with --lora for the whole run")
    check_video_output(args.output, "-o")
    # the headers only: the clip size, and for LTX-2 each file's slot, are checked before the weights
    config = model_config(args.model, args.preset, need_text_encoder=True, names=FILE_FLAGS, **family_files(args))
    if args.distilled and not hasattr(config, "distilled"):
        raise RequestError(f"--distilled is for LTX-2 models; {args.model or config.name} is an AIPROD model: "
                           "leave --distilled out")
    if args.upscale and config.upscaler is None:
        raise RequestError(f"--upscale: {args.model or config.name} has no latent upscaler; run without --upscale"
                           + (" or give LTX-2's with --upscaler FILE" if args.model and args.upscaler is None else ""))
    try:
        config.vae.check_clip(args.frames or config.frames, args.height or config.height, args.width or config.width)
    except ValueError as e:
        raise RequestError(str(e)) from None
    notes = vram_note(args.vram)
    if not args.prompt.strip():
        notes.append("the prompt is empty: the model draws its unconditional clip, what it makes of no text")
    return notes


def _check_numbers(args: argparse.Namespace) -> None:
    check_number("--steps", args.steps, 1)
    check_number("--cfg", args.cfg, 0, hint="1 = no guidance, 3 = the default; a negative scale steers away from "
                                            "the prompt and turns its colours around")
    check_number("--stg", args.stg, 0, hint="0 = off, 1 = LTX-2's default")
    for name in ("frames", "height", "width"):
        check_number(f"--{name}", getattr(args, name), 1)
    check_number("--fps", args.fps, 0, above=True)
    check_number("--shift", args.shift, 0, above=True)
    check_number("--vram", args.vram, 0, above=True, hint="GB of GPU memory")
    for name in (*MOTION_FLAGS, "image_strength"):
        check_number("--" + name.replace("_", "-"), getattr(args, name), 0, 1)
    check_number("--extend-context", args.extend_context, 0)


def run(args: argparse.Namespace) -> int:
    # Imported when the command runs (start-up time: see args.load_for_inference).
    import torch

    from ..conditioning import continuation_frames, join_clips
    from ..flow import guidance_flow
    from ..pipeline import generate
    from ..video_io import read_video, write_video

    model = load_for_inference(args, args.offload)
    if args.distilled:  # the user's word over the file name's
        model = dataclasses.replace(model, config=dataclasses.replace(model.config, distilled=args.distilled == "yes"))
    for path, strength in map(lora_arg, args.lora or ()):
        model = model.with_lora_file(path, strength)
    note = model.family.sampling_note(model, args.steps, args.cfg, args.stg, args.shift)
    if note:
        print(f"{command_name(args)}: {note}", file=sys.stderr)
    guided = args.cfg != 1 if args.cfg is not None else not getattr(model.config, "distilled", False)
    prompts = {"the prompt": args.prompt, **({"--negative": args.negative} if guided else {})}
    for warning in prompt_warnings(model.text_encoder, prompts):
        print(f"{command_name(args)}: warning: {warning}", file=sys.stderr)
    t0 = time.perf_counter()
    c = model.config
    flow = guidance_flow(args.frames or c.frames, args.height or c.height, args.width or c.width,
                         args.motion_from, args.camera, args.flow_method)
    image = source = None
    if args.image:  # a picture, or a clip whose first frames the generated one continues
        image = torch.from_numpy(read_video(args.image, max_frames=args.frames or c.frames)[0]).float() / 255
    if args.extend:  # the new frames start from the clip's last ones; the file holds the clip, then them
        source, source_fps = read_video(args.extend)  # uint8: a long clip in float32 would take four times the memory
        image = continuation_frames(torch.from_numpy(source), c.vae.temporal_compression, args.extend_context)
        image = image.float() / 255
    video = generate(
        model,
        args.prompt,
        negative=args.negative,
        frames=args.frames,
        height=args.height,
        width=args.width,
        steps=args.steps,
        cfg=args.cfg,
        stg=args.stg,
        seed=args.seed,
        sampler=args.sampler,
        shift=args.shift,
        upscale=args.upscale,
        refine_loras=list(map(lora_arg, args.refine_lora or ())),
        progress=not args.quiet,
        offload=args.offload,
        vram_gb=args.vram,
        weight_dtype=args.weight_dtype,
        motion=motion(args, flow),
        image=image,
        image_strength=args.image_strength,
        fps=args.fps or (source_fps if source is not None else None),
    )
    fps = args.fps or model.config.fps
    if source is not None:
        video, fps = join_clips(torch.from_numpy(source), video, image.shape[0]), args.fps or source_fps
    path = write_video(args.output, video, fps=fps)
    t, h, w, _ = video.shape
    print(f"wrote {path} ({t} frames, {w}x{h}, {fps} fps) in {time.perf_counter() - t0:.1f} s")
    return 0
