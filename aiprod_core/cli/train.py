"""`aiprod train`: curriculum training, full or LoRA, on the synthetic world or a folder of clips."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..models.lora import DEFAULT_TARGETS, TEXT_TARGETS, parse_targets
from ..outputs import check_output_folder
from .args import FILE_FLAGS, add_family_file_args, add_model_args, add_quiet_arg, family_files
from .checks import RequestError, check_input, check_model, check_number, command_name, vram_note


def add_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="curriculum training (full or LoRA); runs under torchrun too")
    t.add_argument("--out", required=True, help="run folder: training state, log, loss curve, validation clips, result")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--recipe", default="tiny", choices=["tiny"], help="built-in phase list (default: tiny)")
    src.add_argument("--phases", help="a JSON phase list (see aiprod_core/train/phases.py)")
    t.add_argument("--data", help="a folder of clips with same-name .txt captions, or a JSONL of {path, caption}; "
                   "default: the synthetic world")
    _add_lora_args(t)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--absolute-positions", type=int, default=0, metavar="N",
                   help="add absolute-position features (N frequencies per axis) to a backbone without them; they "
                        "start at zero, so training continues from what the model computes")
    t.add_argument("--pattern", help="full training of a fresh backbone with this block pattern, one letter a block "
                   "(A attention, C 3D-conv): e.g. AAAAAA, an all-attention teacher for `aiprod hybridize`. On a fresh "
                   "preset (--preset, default tiny), or on --model's other components with --reinit backbone")
    t.add_argument("--reinit", metavar="NAMES", help="comma-separated components to start from fresh random weights, "
                   "keeping the rest of --model (e.g. backbone,text_encoder: train them on the model's VAE)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's training state")
    t.add_argument("--stop-after", type=int, help="stop after this many steps in all (saving the state): one sitting")
    t.add_argument("--checkpoint-every", type=int, default=250, help="steps between training-state saves (0: only at phase ends and on a stop)")
    t.add_argument("--steps-scale", type=float, default=1.0, help="multiply every phase's steps and warmup (a shorter run with the same lr shape)")
    t.add_argument("--name", help="name of the result file (default: the model name, or 'lora')")
    t.add_argument("--no-validation", action="store_true", help="skip the validation clips at phase ends")
    _add_placement_args(t)
    add_quiet_arg(t)
    add_model_args(t, default="a LoRA trains on the embedded aiprod-v2-tiny model; full training starts from a "
                              "random tiny preset, so pass the embedded file to continue training it")
    add_family_file_args(t)
    t.set_defaults(func=run, check=check)


def _add_lora_args(t: argparse.ArgumentParser) -> None:
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


def _add_placement_args(t: argparse.ArgumentParser) -> None:
    t.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast on CUDA GPUs with bf16, fp32 elsewhere; bf16: also on the CPU (about 0.78x "
                        "the step time on CPUs with native bf16, e.g. avx512_bf16)")
    t.add_argument("--device", help="train on this device, e.g. cuda (default: where the model is loaded, the CPU)")
    t.add_argument("--offload", default="auto", choices=["auto", "none", "stream"],
                   help="a LoRA run on a GPU (--device cuda): auto keeps as many frozen blocks on it as the memory "
                        "planner fits in --vram (default: what is free) and streams the rest from CPU memory; stream "
                        "streams them all; none moves the whole model. No effect in full training, nor on the CPU without --vram")
    t.add_argument("--vram", type=float, help="GPU memory budget in GB for --offload auto (default: what is free)")


def check(args: argparse.Namespace) -> list[str]:
    check_output_folder(args.out, "--out")
    state = Path(args.out) / "state.safetensors"
    if state.is_file() and not args.resume:  # starting over would delete it, and hours of training with it
        raise RequestError(f"--out {args.out} holds a training state ({state.name}); add --resume to continue that run, "
                           f"or give another --out (or delete {state}) to start a new one")
    check_model(args.model)
    if args.pattern and args.lora_rank:
        raise RequestError("--pattern builds a fresh backbone for full training; leave out --lora-rank")
    if args.pattern and args.model and "backbone" not in (args.reinit or "").replace(" ", "").split(","):
        raise RequestError("--pattern with --model trains a fresh backbone beside the model's other components: add "
                           "--reinit backbone (a trained backbone changes pattern by distillation: aiprod hybridize)")
    _check_family(args)
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
    return vram_note(args.vram)


def _check_family(args: argparse.Namespace) -> None:
    """An LTX-2 --model: its files in their slots (headers only), and a LoRA run without text-encoder adapters."""
    from ..info import model_config

    config = model_config(args.model, args.preset, need_text_encoder=True, names=FILE_FLAGS, **family_files(args))
    if not hasattr(config, "distilled"):  # an AIPROD model
        return
    name = Path(args.model).name
    if not args.lora_rank:
        raise RequestError(f"--model {name} is an LTX-2 model, which trains as a LoRA on its frozen weights; add "
                           "--lora-rank (e.g. 16)")
    if args.lora_text_encoder:
        raise RequestError(f"--lora-text-encoder: the text encoder of LTX-2 ({name}: Gemma 3 and its connector) takes "
                           "no adapters here; leave it out")


def run(args: argparse.Namespace) -> int:
    # Imported when the command runs: `aiprod generate` and the others start without the trainer and
    # torch.distributed.
    import signal

    import torch
    import torch.distributed as dist

    from ..train.run import RunFolder
    from ..train.trainer import Trainer

    def stop(signum, frame):  # a scheduler's SIGTERM saves the state like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    model = _model(args)
    phases = _phases(args, model)
    folder = RunFolder(args.out)
    data = None
    if args.data:
        from ..train.folder import VideoFolderData

        data = VideoFolderData(args.data, model, cache_dir=folder.cache, seed=args.seed)
        _warn_long_captions(args, model.text_encoder, {c.path.name: c.caption for c in data.clips})
    preserve = _read_prompts(args.preserve_prompts) if args.preserve_prompts else ()
    _warn_long_captions(args, model.text_encoder, dict(enumerate(preserve, 1)), what="--preserve-prompts line")
    opts = _options(args, model, preserve)
    out = Trainer(model, phases, opts, data).run(resume=folder.prepare(args.resume))
    if out is None:
        print(f"stopped after {args.stop_after} steps; continue with --resume (state in {args.out})")
    else:
        print(f"wrote {out}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def _phases(args: argparse.Namespace, model) -> list:
    """The phase list of --phases, a LoRA run's recipe (at the model's clip size) or --recipe, its steps scaled by
    --steps-scale."""
    from ..train.phases import RECIPES, load_phases, lora_recipe, scale_steps

    if args.phases:
        phases = load_phases(args.phases)
    elif args.lora_rank:
        c = model.config
        phases = lora_recipe(frames=c.frames, height=c.height, width=c.width, temporal=c.vae.temporal_compression,
                             batch=model.family.lora_batch)
    else:
        phases = RECIPES[args.recipe]()
    if args.steps_scale != 1.0:
        scale_steps(phases, args.steps_scale)
    return phases


def _model(args: argparse.Namespace):
    """The model to train: --model, --preset, the embedded model for a LoRA, or a random tiny preset."""
    import torch

    from ..memory.engine import precision_dtype
    from ..model import load_model

    # a LoRA's frozen backbone in bf16 where the run computes in bf16: half the memory and the streamed copies,
    # as the planner plans; the VAE keeps float32 for the latents it encodes once. Full training keeps float32
    # weights (the optimizer updates them).
    compute = precision_dtype(args.precision, torch.device(args.device or "cpu"))
    dtype = torch.bfloat16 if args.lora_rank and compute == torch.bfloat16 else None
    if args.pattern and not args.model:
        model = _fresh_with_pattern(args.preset or "tiny", args.pattern)
    elif args.lora_rank and not (args.model or args.preset):
        model = load_model(dtype=dtype, vae_dtype=torch.float32)
    else:
        model = load_model(args.model, args.preset or (None if args.model else "tiny"), dtype=dtype,
                           vae_dtype=torch.float32, **family_files(args))
    if args.pattern and args.model:
        model.config = _pattern_config(model.config, args.pattern)  # the backbone is made anew by --reinit below
    if args.reinit:
        from ..train.reinit import reinitialise

        reinitialise(model, [n.strip() for n in args.reinit.split(",") if n.strip()], seed=args.seed)
    if args.absolute_positions:
        from ..train.reinit import add_absolute_positions

        add_absolute_positions(model, args.absolute_positions)
    return model


def _pattern_config(config, pattern: str):
    from ..train.reinit import with_pattern

    try:
        return with_pattern(config, pattern)
    except ValueError as e:
        raise RequestError(f"--pattern {pattern}: {e}") from None


def _fresh_with_pattern(preset_name: str, pattern: str):
    """A preset's model, random as `--preset` builds it, with another block pattern (named after it)."""
    from ..config import preset
    from ..model import build_model

    return build_model(_pattern_config(preset(preset_name), pattern))


def _options(args: argparse.Namespace, model, preserve: tuple[str, ...]):
    """The command's options as the trainer takes them: one value per concern."""
    from ..train.options import LoRAOptions, Preservation, RunOptions, TrainOptions, TrainPlacement

    if args.lora_text_encoder and not args.lora_rank:
        raise ValueError("text-encoder adapters (--lora-text-encoder) belong to a LoRA; set the LoRA rank "
                         "(--lora-rank) too, or leave them out (full training trains the text encoder itself)")
    run = RunOptions(args.out, seed=args.seed, name=args.name or ("lora" if args.lora_rank else model.config.name),
                     checkpoint_every=args.checkpoint_every, stop_after=args.stop_after,
                     validate=not args.no_validation, progress=not args.quiet)
    lora = LoRAOptions(args.lora_rank, args.lora_alpha, _lora_targets(args.lora_targets),
                       TEXT_TARGETS if args.lora_text_encoder else ()) if args.lora_rank else None
    return TrainOptions(run, lora=lora, placement=TrainPlacement(args.device, args.offload, args.vram, args.precision),
                        preservation=Preservation(preserve, args.preserve_weight))


def _read_prompts(path: str) -> tuple[str, ...]:
    from ..train.trainer import prompt_lines

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


def _warn_long_captions(args: argparse.Namespace, text_encoder, texts: dict, what: str = "the caption of") -> None:
    """One line when some training texts are longer than the text encoder reads: training sees only their start."""
    cut = [(name, t) for name, text in texts.items() if (t := text_encoder.truncation(text)).cut]
    if cut:
        name, first = cut[0]
        print(f"{command_name(args)}: warning: {len(cut)} of {len(texts)} texts are cut, so training reads only "
              f"their start; the first: {first.warning(f'{what} {name}')}", file=sys.stderr)
