"""The `aiprod` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .cli_checks import check_request, command_name, lora_arg, prompt_warnings
from .config import PRESETS, ConfigError
from .memory.engine import StageOutOfMemoryError
from .models.lora import DEFAULT_TARGETS, TEXT_TARGETS, parse_targets


def _add_model_args(p: argparse.ArgumentParser, default: str = "the embedded aiprod-v2-tiny model") -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", help=f"a .safetensors checkpoint (default: {default})")
    g.add_argument("--preset", choices=sorted(PRESETS), help="build a preset with random weights instead")


def _add_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="the backbone's, upscaler's and VAE's weights: auto = bf16 on a CUDA GPU that has it (what "
                        "`aiprod info --plan` plans for), fp32 elsewhere; bf16 on the CPU too (faster on CPUs with "
                        "native bf16, e.g. avx512_bf16)")


def _load_for_inference(args: argparse.Namespace, offload: str = "auto"):
    """The model of --model / --preset in the dtype --precision picks for where it will run."""
    from .memory.engine import compute_device, precision_dtype
    from .pipeline import load_model

    return load_model(args.model, args.preset, dtype=precision_dtype(args.precision, compute_device(offload)))


def _add_memory_args(p: argparse.ArgumentParser, default_vram: float | None = None,
                     dtypes: tuple[str, ...] = ("fp8",)) -> None:
    p.add_argument("--vram", type=float, default=default_vram,
                   help="GPU memory budget in GB" + (f" (default {default_vram:g})" if default_vram else " (default: what is free)"))
    p.add_argument("--weight-dtype", choices=dtypes,
                   help="backbone weight storage (default: as loaded; fp8 only when the plan needs it)")


def _add_clip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, help="frames, 1 + k * temporal compression (default: the model's)")
    p.add_argument("--height", type=int, help="pixels, a multiple of the spatial compression")
    p.add_argument("--width", type=int, help="pixels, a multiple of the spatial compression")


def _add_motion_args(p: argparse.ArgumentParser) -> None:
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


def _motion(args: argparse.Namespace, flow=None):
    """The motion-guidance options as one value, checked once (a flow given, or None)."""
    from .conditioning import MotionGuidance

    return MotionGuidance(flow=flow, flow_strength=args.flow_strength, flow_start=args.flow_start,
                          flow_end=args.flow_end, flow_pull=args.flow_pull, warp_guidance=args.warp_guidance,
                          warp_end=args.warp_end)


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from .flow import guidance_flow
    from .pipeline import continuation_frames, generate, join_clips
    from .video_io import read_video, write_video

    model = _load_for_inference(args, args.offload)
    for path, strength in map(lora_arg, args.lora or ()):
        model = model.with_lora_file(path, strength)
    prompts = {"the prompt": args.prompt, **({"--negative": args.negative} if args.cfg != 1 else {})}
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
        seed=args.seed,
        sampler=args.sampler,
        shift=args.shift,
        upscale=args.upscale,
        progress=not args.quiet,
        offload=args.offload,
        vram_gb=args.vram,
        weight_dtype=args.weight_dtype,
        motion=_motion(args, flow),
        image=image,
        image_strength=args.image_strength,
    )
    fps = args.fps or model.config.fps
    if source is not None:
        video, fps = join_clips(torch.from_numpy(source), video, image.shape[0]), args.fps or source_fps
    path = write_video(args.output, video, fps=fps)
    t, h, w, _ = video.shape
    print(f"wrote {path} ({t} frames, {w}x{h}, {fps} fps) in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_flow(args: argparse.Namespace) -> int:
    import torch

    from .flow import extract_flow_from_file, flow_to_image
    from .video_io import write_video

    t0 = time.perf_counter()
    res, _frames, fps = extract_flow_from_file(args.video, args.method, args.max_frames, args.consistency)
    seconds = time.perf_counter() - t0
    if args.output:
        from .checkpoint import save_safetensors_atomic

        tensors = {"flow": res.flow} if res.valid is None else {"flow": res.flow, "valid": res.valid.to(torch.uint8)}
        save_safetensors_atomic(tensors, args.output, {"aiprod.flow_method": args.method, "aiprod.fps": str(fps)})
    if args.preview:
        write_video(args.preview, flow_to_image(res.flow), fps=fps)
    mag = res.flow.norm(dim=-1)
    n, h, w, _ = res.flow.shape
    print(f"{args.video}: {n} frame pairs of {w}x{h}, {args.method}, {n / seconds:.1f} pairs/s; "
          f"mean |flow| {float(mag.mean()):.2f} px, max {float(mag.max()):.2f} px"
          + (f"; {float(res.valid.float().mean()):.0%} forward-backward consistent" if res.valid is not None else "")
          + "".join(f"; wrote {p}" for p in (args.output, args.preview) if p))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .info import model_info

    if args.plan:
        return _print_plan(args)
    info = model_info(model=args.model, preset_name=args.preset, frames=args.frames, height=args.height, width=args.width)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{info['name']} ({info['source']})")
        for name, c in info["components"].items():
            extra = ", ".join(f"{k}={v}" for k, v in c.items() if k != "params")
            print(f"  {name:13s} {c['params'] / 1e6:10.2f} M params  {extra}")
        clip = info["clip"]
        print(f"  clip {clip['frames']}x{clip['height']}x{clip['width']} -> latent {clip['latent_shape']}, {clip['tokens']} tokens")
    return 0


def _print_plan(args: argparse.Namespace) -> int:
    from .info import model_config
    from .memory.plan import plan_memory

    config = model_config(args.model, args.preset)
    plan = plan_memory(config, args.height, args.width, args.frames, args.vram, upscale=args.upscale,
                       weight_dtype=args.weight_dtype or "auto", lora_rank=args.lora_rank)
    d = plan.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    clip = d["clip"]
    print(f"{d['model']}: {clip['width']}x{clip['height']}x{clip['frames']} in {d['budget_gb']:g} GB "
          f"({d['usable_gb']:g} GB usable); peaks are planner estimates")
    for name, s in d["stages"].items():
        if "blocks_resident" in s:
            what = (f"{s['blocks_resident']} blocks resident, {s['blocks_streamed']} streamed (prefetch {s['prefetch']}), "
                    f"{s['weight_dtype']} weights, {s['tokens']} tokens, attention "
                    + (f"in chunks of {s['attention_chunk']} queries" if s["attention_chunk"] else "unchunked"))
        elif "vae_temporal_chunk" in s:
            what = (f"{s['vae_temporal_chunk'] or 'all'} latent frames at a time, "
                    + (f"tiles of {s['vae_spatial_tile']} latent px" if s["vae_spatial_tile"] else "whole frames"))
        else:
            what = ""
        peak = f"{s['peak_gb']:5.2f} GB" if "peak_gb" in s else "    -   "
        print(f"  {name:14s} {s['where']:4s} {peak}  {what}{'; ' if what else ''}{s['note']}")
    return 0


def _read_prompts(path: str) -> tuple[str, ...]:
    from .train.trainer import prompt_lines

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--preserve-prompts {path}: cannot read it ({e}); expected a UTF-8 text file, "
                         "one prompt per line") from e
    prompts = prompt_lines(text)
    if not prompts:
        raise ValueError(f"--preserve-prompts {path} holds no prompt; write one prompt per line")
    return prompts


def _lora_targets(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_TARGETS
    targets = parse_targets(text)
    if not targets:
        raise ValueError(f"--lora-targets {text!r} names no layer; give e.g. attn1.to_q,attn1.to_v or leave it out")
    return targets


def cmd_train(args: argparse.Namespace) -> int:
    import signal

    import torch
    import torch.distributed as dist

    from .memory.engine import precision_dtype
    from .pipeline import load_model
    from .train.phases import RECIPES, load_phases, lora_recipe
    from .train.trainer import Trainer, TrainOptions

    def stop(signum, frame):  # a scheduler's SIGTERM saves the state like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if args.phases:
        phases = load_phases(args.phases)
    elif args.lora_rank:
        phases = lora_recipe()
    else:
        phases = RECIPES[args.recipe]()
    if args.steps_scale != 1.0:
        from .train.phases import scale_steps

        scale_steps(phases, args.steps_scale)
    # a LoRA's frozen backbone in bf16 where the run computes in bf16: half the memory and the streamed copies,
    # as the planner plans; the VAE keeps float32 for the latents it encodes once. Full training keeps float32
    # weights (the optimizer updates them).
    compute = precision_dtype(args.precision, torch.device(args.device or "cpu"))
    dtype = torch.bfloat16 if args.lora_rank and compute == torch.bfloat16 else None
    if args.lora_rank and not (args.model or args.preset):
        model = load_model(dtype=dtype, vae_dtype=torch.float32)
    else:
        model = load_model(args.model, args.preset or (None if args.model else "tiny"), dtype=dtype,
                           vae_dtype=torch.float32)
    if args.reinit:
        from .train.reinit import reinitialise

        reinitialise(model, [n.strip() for n in args.reinit.split(",") if n.strip()], seed=args.seed)
    if args.absolute_positions:
        from .train.reinit import add_absolute_positions

        add_absolute_positions(model, args.absolute_positions)
    data = None
    if args.data:
        from .train.folder import VideoFolderData

        data = VideoFolderData(args.data, model, cache_dir=os.path.join(args.out, "cache"), seed=args.seed)
        _warn_long_captions(args, model.text_encoder, {c.path.name: c.caption for c in data.clips})
    preserve = _read_prompts(args.preserve_prompts) if args.preserve_prompts else ()
    _warn_long_captions(args, model.text_encoder, dict(enumerate(preserve, 1)), what="--preserve-prompts line")
    opts = TrainOptions(
        out_dir=args.out, seed=args.seed, checkpoint_every=args.checkpoint_every, lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha, lora_targets=_lora_targets(args.lora_targets),
        lora_text_targets=TEXT_TARGETS if args.lora_text_encoder else (),
        name=args.name or ("lora" if args.lora_rank else model.config.name),
        stop_after=args.stop_after, validate=not args.no_validation, progress=not args.quiet,
        device=args.device, offload=args.offload, vram_gb=args.vram, preserve_weight=args.preserve_weight, precision=args.precision,
        preserve_prompts=preserve,
    )
    out = Trainer(model, phases, opts, data).run(resume=args.resume)
    if out is None:
        print(f"stopped after {args.stop_after} steps; continue with --resume (state in {args.out})")
    else:
        print(f"wrote {out}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def _warn_long_captions(args: argparse.Namespace, text_encoder, texts: dict, what: str = "the caption of") -> None:
    """One line when some training texts are longer than the text encoder reads: training sees only their start."""
    cut = [(name, t) for name, text in texts.items() if (t := text_encoder.truncation(text)).cut]
    if cut:
        name, first = cut[0]
        print(f"{command_name(args)}: warning: {len(cut)} of {len(texts)} texts are cut, so training reads only "
              f"their start; the first: {first.warning(f'{what} {name}')}", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from .eval.adherence import prompt_adherence

    if args.what == "words":
        from .eval.words import load_text_state, read_attributes

        result = read_attributes(*load_text_state(args.state), per_language=args.per_language, seed=args.seed,
                                 languages=tuple(args.languages))
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            for split, scores in result["mean"].items():
                print(f"{split:9s} " + "  ".join(f"{k} {v:.2f}" for k, v in scores.items()))
            for lang, splits in result["per_language"].items():
                print(f"  {lang}  held out " + "  ".join(f"{k} {v:.2f}" for k, v in splits["heldout"].items()))
        return 0
    model = _load_for_inference(args, "none")  # the evals run on the CPU: "auto" precision is float32 there
    if args.what == "motion":
        from .eval.motion import motion_adherence

        result = motion_adherence(model, clips=args.clips, per_preset=args.per_preset, steps=args.steps, cfg=args.cfg,
                                  seed=args.seed, motion=_motion(args), camera_speed=args.camera_speed,
                                  **({"presets": tuple(args.presets.split(","))} if args.presets else {}), progress=not args.quiet)
        print(json.dumps(result, indent=2))
        return 0
    if args.what == "i2v":
        from .eval.image_to_video import image_to_video_adherence

        result = image_to_video_adherence(model, clips=args.clips, per_preset=args.per_preset, steps=args.steps,
                                          cfg=args.cfg, seed=args.seed, progress=not args.quiet, motion=_motion(args))
        print(json.dumps(result, indent=2))
        return 0
    if args.what == "reliance":
        from .eval.reliance import text_reliance

        print(json.dumps(text_reliance(model, clips=args.clips, seed=args.seed), indent=2))
        return 0
    if args.what == "upscale":
        from .eval.upscale import upscaler_vs_bicubic

        print(json.dumps(upscaler_vs_bicubic(model, clips=args.clips, seed=args.seed), indent=2))
        return 0
    kw = dict(per_language=args.per_language, steps=args.steps, cfg=args.cfg, seed=args.seed, split=args.split,
              shapes=tuple(args.shapes), sizes=tuple(args.sizes), languages=tuple(args.languages), progress=not args.quiet)
    if args.candidates:
        kw["candidates"] = tuple(args.candidates)
    if args.lora:
        from .eval.adherence import lora_adherence
        from .models.lora import read_lora

        lora, text_lora = read_lora(args.lora, model.backbone, model.text_encoder)
        result = lora_adherence(model, lora, args.lora_strength, name=args.lora, text_lora=text_lora, **kw)
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            for arm in ("without_lora", "with_lora"):
                print(f"{arm:24s} " + "  ".join(f"{k} {v:.2f}" for k, v in result[arm]["generated"].items()))
            print(f"{'change':24s} " + "  ".join(f"{k} {v:+.2f}" for k, v in result["change"].items()))
        return 0
    result = prompt_adherence(model, **kw)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        for name in ("generated", "floor_shuffled_prompts", "ceiling_world_clips", "ceiling_through_vae", "worst_language"):
            print(f"{name:24s} " + "  ".join(f"{k} {v:.2f}" for k, v in result[name].items()))
        print(f"{'objects drawn':24s} " + "  ".join(f"{k} {v:.2f}" for k, v in result["objects_drawn"]["generated"].items()))
        for lang, s in result["per_language"].items():
            print(f"  {lang}  " + "  ".join(f"{k} {v:.2f}" for k, v in s.items()))
    return 0


def cmd_run_workflow(args: argparse.Namespace) -> int:
    from .remote import WorkflowError, object_info, run_workflow
    from .workflow import is_ui_format, load_json, set_input, ui_to_api

    graph, ui = load_json(args.workflow), None
    try:
        if is_ui_format(graph):  # a graph saved from the editor: convert with the server's node definitions
            ui = graph
            graph = ui_to_api(ui, object_info(args.server))
        for assignment in args.set:
            set_input(graph, assignment)
        files = run_workflow(args.server, graph, args.out, ui=ui, timeout=args.timeout, progress=not args.quiet)
    except WorkflowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for f in files:
        print(f)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import load_checkpoint, save_checkpoint

    config, parts = load_checkpoint(args.model, require=("backbone", "vae", "text_encoder"))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    save_checkpoint(args.output, config, parts, {"aiprod.exported_from": os.path.basename(args.model)}, dtype=dtype)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB, {args.dtype})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .train.captions import LANGUAGES

    parser = argparse.ArgumentParser(prog="aiprod", description="AIPROD v2 multilingual text-to-video")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="text -> video file (.mp4, .webm, .webp or .gif)")
    g.add_argument("prompt", help="the prompt, in any language")
    g.add_argument("-o", "--output", default="aiprod.mp4", help="output file; the extension picks the format")
    g.add_argument("--negative", default="", help="negative prompt for classifier-free guidance")
    _add_clip_args(g)
    g.add_argument("--steps", type=int, default=20, help="sampling steps")
    g.add_argument("--cfg", type=float, default=3.0, help="classifier-free guidance scale (1 = off)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--sampler", default="euler", choices=["euler", "heun"])
    g.add_argument("--shift", type=float, help="override the token-count sigma shift")
    g.add_argument("--upscale", action="store_true", help="2x latent upscale then refine")
    g.add_argument("--fps", type=float, help="frames per second of the file (default: the model's)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_memory_args(g)
    g.add_argument("--offload", default="auto", choices=["auto", "stream", "none"],
                   help="auto: on a GPU, plan for its free memory (or --vram) and stream when needed; no effect on the CPU")
    g.add_argument("--lora", action="append", metavar="FILE[:STRENGTH]",
                   help="apply a LoRA (from aiprod train --lora-rank), at a strength (default 1); repeat to stack LoRAs")
    _add_motion_args(g)
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
    _add_model_args(g)
    _add_precision_arg(g)
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="curriculum training (full or LoRA); runs under torchrun too")
    t.add_argument("--out", required=True, help="run folder: training state, log, loss curve, validation clips, result")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--recipe", default="tiny", choices=["tiny"], help="built-in phase list (default: tiny)")
    src.add_argument("--phases", help="a JSON phase list (see aiprod_core/train/phases.py)")
    t.add_argument("--data", help="a folder of clips with same-name .txt captions, or a JSONL of {path, caption}; "
                   "default: the synthetic world")
    t.add_argument("--lora-rank", type=int, default=0, help="train a LoRA of this rank on a frozen model (0 = full training)")
    t.add_argument("--lora-alpha", type=float, help="LoRA alpha (default: the rank)")
    t.add_argument("--lora-targets", help="comma-separated linear layers the LoRA adapts, matched on the end of their "
                   "path (default: every attention projection and feed-forward layer: "
                   f"{','.join(DEFAULT_TARGETS)})")
    t.add_argument("--lora-text-encoder", action="store_true",
                   help="the LoRA adapts the text encoder's linear layers too, so that a new word can get a meaning of "
                        "its own instead of borrowing a near one's (captions are then encoded at every step)")
    t.add_argument("--preserve-prompts", metavar="FILE",
                   help="a LoRA run keeps its outputs for these prompts (UTF-8 text, one per line) near the base "
                        "model's, on each step's noisy latents: it learns its subject without redrawing the rest")
    t.add_argument("--preserve-weight", type=float, default=1.0, help="weight of --preserve-prompts' loss")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--absolute-positions", type=int, default=0, metavar="N",
                   help="add absolute-position features (N frequencies per axis) to a backbone without them; they "
                        "start at zero, so training continues from what the model computes")
    t.add_argument("--reinit", metavar="NAMES", help="comma-separated components to start from fresh random weights, "
                   "keeping the rest of --model (e.g. backbone,text_encoder: train them on the model's VAE)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's training state")
    t.add_argument("--stop-after", type=int, help="stop after this many steps in all (saving the state): one sitting")
    t.add_argument("--checkpoint-every", type=int, default=250, help="steps between training-state saves (0: only at phase ends and on a stop)")
    t.add_argument("--steps-scale", type=float, default=1.0, help="multiply every phase's steps and warmup (a shorter run with the same lr shape)")
    t.add_argument("--name", help="name of the result file (default: the model name, or 'lora')")
    t.add_argument("--no-validation", action="store_true", help="skip the validation clips at phase ends")
    t.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast on CUDA GPUs with bf16, fp32 elsewhere; bf16: also on the CPU (about 0.78x "
                        "the step time on CPUs with native bf16, e.g. avx512_bf16)")
    t.add_argument("--device", help="train on this device, e.g. cuda (default: where the model is loaded, the CPU)")
    t.add_argument("--offload", default="auto", choices=["auto", "none", "stream"],
                   help="a LoRA run on a GPU (--device cuda): auto keeps as many frozen blocks on it as the memory "
                        "planner fits in --vram (default: what is free) and streams the rest from CPU memory; stream "
                        "streams them all; none moves the whole model. No effect in full training, nor on the CPU without --vram")
    t.add_argument("--vram", type=float, help="GPU memory budget in GB for --offload auto (default: what is free)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_args(t, default="a LoRA trains on the embedded aiprod-v2-tiny model; full training starts from a "
                                  "random tiny preset, so pass the embedded file to continue training it")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="measure a model")
    esub = e.add_subparsers(dest="what", required=True)
    a = esub.add_parser("adherence", help="prompt adherence on held-out caption frames in every language")
    _add_model_args(a)
    _add_precision_arg(a)
    a.add_argument("--per-language", type=int, default=8, help="clips per language")
    a.add_argument("--steps", type=int, default=20)
    a.add_argument("--cfg", type=float, default=3.0)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--frames", "--split", dest="split", default="heldout", choices=["heldout", "train", "plain"],
                   help="caption frames: sentence frames held out of training (default), those training used, or "
                        "plain prompts as typed (\"red circle, moving left\"), also kept out of training")
    a.add_argument("--shapes", nargs="+", default=["circle", "square", "triangle"],
                   choices=["circle", "square", "triangle", "star"], help="the shapes the prompts ask for")
    a.add_argument("--sizes", nargs="+", default=["normal"], choices=["small", "normal", "large"],
                   help="object sizes of the prompts' scenes")
    a.add_argument("--candidates", nargs="+", choices=["circle", "square", "triangle", "star"],
                   help="the shapes the classifier may answer (default: the world's three and any of --shapes; "
                        "with --lora: all four), e.g. all four to count an old shape drawn as a star as wrong")
    a.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES, metavar="LANG",
                   help=f"the prompts' languages (default: all twelve: {' '.join(LANGUAGES)})")
    a.add_argument("--lora", help="a LoRA file: score the same prompts without and with it, in one run")
    a.add_argument("--lora-strength", type=float, default=1.0)
    a.add_argument("--json", action="store_true", help="print JSON")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_eval)
    u = esub.add_parser("upscale", help="PSNR of the 2x latent upscaler vs bicubic, against the world's 2x render")
    _add_model_args(u)
    _add_precision_arg(u)
    u.add_argument("--clips", type=int, default=16)
    u.add_argument("--seed", type=int, default=0)
    u.set_defaults(func=cmd_eval)

    r = esub.add_parser("reliance", help="how much the denoising loss rises when the caption names the wrong colour, "
                                         "shape or direction, per noise level (JSON): which words the model reads")
    _add_model_args(r)
    _add_precision_arg(r)
    r.add_argument("--clips", type=int, default=48)
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=cmd_eval)

    w = esub.add_parser("words", help="what the text encoder alone reads: a training state's attribute heads on "
                                      "captions in training and held-out sentence frames, per language and frame")
    w.add_argument("state", help="state.safetensors of an `aiprod train` run")
    w.add_argument("--per-language", type=int, default=128, help="captions per language and split")
    w.add_argument("--seed", type=int, default=2)
    w.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES, metavar="LANG")
    w.add_argument("--json", action="store_true", help="print JSON (with each held-out frame's readings)")
    w.set_defaults(func=cmd_eval)

    def clip_set_eval(name: str, ways: str, text: str) -> argparse.ArgumentParser:
        """An eval of world clips and camera-preset clips, each generated several ways (JSON)."""
        e = esub.add_parser(name, help=text)
        _add_model_args(e)
        _add_precision_arg(e)
        e.add_argument("--clips", type=int, default=16, help=f"world clips (each generated {ways})")
        e.add_argument("--per-preset", type=int, default=2, help=f"clips per camera preset (each generated {ways})")
        e.add_argument("--steps", type=int, default=20)
        e.add_argument("--cfg", type=float, default=3.0)
        e.add_argument("--seed", type=int, default=0)
        _add_motion_args(e)
        e.add_argument("--json", action="store_true", help="print JSON (always on)")
        e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        e.set_defaults(func=cmd_eval)
        return e

    m = clip_set_eval("motion", "3 ways", "motion guidance: flow error and direction, guided vs unguided vs random (JSON)")
    m.add_argument("--presets", help="comma-separated camera presets (default: all eight)")
    m.add_argument("--camera-speed", type=float, default=1.0, help="pace of the camera presets (1 = the default)")
    clip_set_eval("i2v", "both ways", "image-to-video: first frame kept, prompt and camera followed, text alone vs "
                                      "text + the first frame (JSON)")

    fl = sub.add_parser("flow", help="optical flow tools")
    fsub = fl.add_subparsers(dest="what", required=True)
    fx = fsub.add_parser("extract", help="optical flow of a video: a preview (colour wheel) and/or a .safetensors file")
    fx.add_argument("video", help="a video file (.mp4, .webm, .mov, .webp, .gif)")
    fx.add_argument("--method", default="dis-fast", help="dis-ultrafast, dis-fast, dis-medium, farneback or raft")
    fx.add_argument("--preview", help="write the colour-wheel view here (hue = direction, brightness = speed)")
    fx.add_argument("-o", "--output", help="write the flow [T-1,H,W,2] (and mask) as .safetensors")
    fx.add_argument("--consistency", action="store_true", help="also compute the forward-backward consistency mask")
    fx.add_argument("--max-frames", type=int, help="read at most this many frames")
    fx.set_defaults(func=cmd_flow)

    x = sub.add_parser("export", help="re-save a model checkpoint at another precision (fp16 halves the file)")
    x.add_argument("model", help="an all-in-one .safetensors checkpoint")
    x.add_argument("-o", "--output", required=True)
    x.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    x.set_defaults(func=cmd_export)

    w = sub.add_parser("run-workflow", help="run a saved ComfyUI workflow on a ComfyUI server and download its outputs")
    w.add_argument("workflow", help="a workflow JSON, API format (workflows/api/) or as saved by the editor")
    w.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI's address")
    w.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="change an input first; NODE is a node id, title or class name (repeatable)")
    w.add_argument("-o", "--out", default="aiprod-out", help="folder for the downloaded outputs")
    w.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    w.add_argument("--quiet", action="store_true", help="no progress bars")
    w.set_defaults(func=cmd_run_workflow)

    i = sub.add_parser("info", help="parameter counts, block counts and latent size of a model")
    _add_model_args(i)
    _add_clip_args(i)
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--plan", action="store_true", help="plan GPU memory per stage for the clip inside --vram")
    i.add_argument("--upscale", action="store_true", help="with --plan: decode the 2x upscaled clip")
    i.add_argument("--lora-rank", type=int, default=16, help="with --plan: LoRA rank of the training stage")
    _add_memory_args(i, default_vram=8.0, dtypes=("bf16", "fp16", "fp32", "fp8"))
    i.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if sys.platform == "linux":
        # grow allocations in place instead of caching fixed blocks: measured 1.3-1.5 GB less reserved at the
        # same speed at 768x512x121 (README); set before the first CUDA allocation, and only if the user has not
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    name = command_name(args)
    try:
        for note in check_request(args):  # before any model loads: a bad request costs a second, not a clip
            print(f"{name}: note: {note}", file=sys.stderr)
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, StageOutOfMemoryError) as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a write that failed (disk full, permission): one line that names the file
        print(f"{name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
