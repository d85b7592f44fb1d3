"""`aiprod hybridize`: distil an AIPROD or LTX-2 model into one with conv blocks where the pattern says, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..outputs import check_output_folder
from .args import FILE_FLAGS, add_family_file_args, add_quiet_arg, family_files
from .checks import RequestError, check_input, check_model, check_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("hybridize", help="turn attention blocks of a model into conv blocks, by distillation; runs "
                       "under torchrun too")
    h.add_argument("--model", required=True, help="the teacher: an AIPROD .safetensors checkpoint, or an LTX-2 one "
                   "with its --text-encoder (and split files)")
    h.add_argument("--pattern", required=True, help="the student's blocks, one letter per teacher block: A keeps the "
                   "attention block, C makes it a conv block (a teacher's C stays C)")
    h.add_argument("--out", required=True, help="run folder: training state, log, distillation clips, result")
    h.add_argument("--resume", action="store_true", help="continue from the run folder's training state")
    h.add_argument("--steps-blockwise", type=int, default=200, help="steps of block-wise distillation (default 200)")
    h.add_argument("--steps-end-to-end", type=int, default=200, help="steps of end-to-end distillation (default 200)")
    h.add_argument("--lr", type=float, default=1e-3, help="learning rate of the new conv blocks (default 1e-3)")
    h.add_argument("--batch", type=int, default=4, help="latents per step (default 4)")
    h.add_argument("--prompts", metavar="FILE", help="distil on the teacher's own generations for these prompts (UTF-8 "
                   "text, one per line), made once and kept in --out; default: the synthetic world's clips")
    h.add_argument("--clips", type=int, default=32, help="latents to distil on (default 32)")
    h.add_argument("--clip", metavar="FxHxW", help="their size, e.g. 9x64x64 (default: the teacher's clip)")
    h.add_argument("--device", help="run on this device, e.g. cuda (default: the CPU)")
    h.add_argument("--group", type=int, default=0, help="fresh blocks trained at a time, each group through both "
                   "stages (default: all at once, or as many as --vram fits for an LTX-2 teacher)")
    h.add_argument("--offload", default="auto", choices=["auto", "none", "stream"],
                   help="where the blocks are while they run: auto plans an LTX-2 teacher on a CUDA device for --vram "
                   "(streamed from CPU memory, the fresh blocks trained --group at a time); stream streams every "
                   "block; none moves the whole model to --device")
    h.add_argument("--vram", type=float, help="GPU memory budget in GB for --offload auto (default: what is free)")
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--checkpoint-every", type=int, default=100,
                   help="steps between training-state saves (0: only at stage ends and on a stop)")
    h.add_argument("--name", help="name of the result file (default: the teacher's model name + '-hybrid')")
    add_family_file_args(h)
    add_quiet_arg(h)
    h.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    from ..info import model_config
    from ..train.hybridize import replaced_blocks

    check_output_folder(args.out, "--out")
    state = Path(args.out) / "state.safetensors"
    if state.is_file() and not args.resume:
        raise RequestError(f"--out {args.out} holds a training state ({state.name}); add --resume to continue that run, "
                           f"or give another --out (or delete {state}) to start a new one")
    check_model(args.model)
    check_input(args.prompts, "--prompts")
    config = model_config(args.model, need_text_encoder=True, names=FILE_FLAGS, **family_files(args))
    ltx2 = hasattr(config, "distilled")
    pattern = config.transformer.block_kinds if ltx2 else config.backbone.pattern
    replaced_blocks(pattern, args.pattern)  # ValueError: one line, exit 2
    if args.clip:
        try:
            config.vae.check_clip(*_clip(args.clip))
        except ValueError as e:
            raise RequestError(f"--clip {args.clip}: {e}") from None
    for flag, value in (("--steps-blockwise", args.steps_blockwise), ("--steps-end-to-end", args.steps_end_to_end),
                        ("--checkpoint-every", args.checkpoint_every)):
        check_number(flag, value, 0)
    check_number("--batch", args.batch, 1)
    check_number("--group", args.group, 0)
    if args.vram is not None:
        check_number("--vram", args.vram, 0, above=True, hint="GB of GPU memory")
        # a budget nothing fits is refused before the teacher loads (a free-memory budget is read at the run): the
        # run's own placement, planned here from the config
        from ..memory.hybridize_plan import hybridize_placement
        from ..memory.stages import MemoryPlanError

        clip = _clip(args.clip) if args.clip else (config.frames, config.height, config.width)
        try:
            hybridize_placement(config, args.pattern, clip, args.batch, args.device or "cpu", offload=args.offload,
                                vram_gb=args.vram, group=args.group)
        except MemoryPlanError as e:
            raise RequestError(f"--vram {args.vram:g}: {e}") from None
    check_number("--clips", args.clips, 1)
    check_number("--lr", args.lr, 0, above=True)
    return []


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    import sys

    import torch
    import torch.distributed as dist

    from ..model import load_model
    from ..train.hybridize import HybridizeOptions, Hybridizer
    from ..train.options import RunOptions
    from ..train.run import RunFolder, run_name

    def stop(signum, frame):  # a scheduler's SIGTERM saves the state like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    device = args.device
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if device == "cuda":  # one GPU a process
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    from ..memory.hybridize_plan import hybridize_placement

    prompts = _read_prompts(args.prompts) if args.prompts else ()
    teacher = load_model(args.model, **family_files(args))
    c = teacher.config
    clip = _clip(args.clip) if args.clip else (c.frames, c.height, c.width)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    placement, group = hybridize_placement(c, args.pattern, clip, max(1, args.batch // world), device or "cpu",
                                           offload=args.offload, vram_gb=args.vram,
                                           compute=next(teacher.backbone.parameters()).dtype, group=args.group)
    if placement is not None and placement.planned:
        sp = placement.stage("distil_end_to_end")
        print(f"memory plan: {sp.note}; about {placement.peak_bytes / 2**30:.1f} GB", file=sys.stderr)
    name = run_name(args.name or f"{teacher.config.name}-hybrid")
    opts = HybridizeOptions(RunOptions(args.out, seed=args.seed, name=name, checkpoint_every=args.checkpoint_every,
                                       progress=not args.quiet),
                            args.pattern, steps_blockwise=args.steps_blockwise,
                            steps_end_to_end=args.steps_end_to_end, lr=args.lr, batch=args.batch, clips=args.clips,
                            prompts=prompts, device=device, clip=clip, group=group, placement=placement)
    settings = {"model": str(Path(args.model).resolve()), "pattern": args.pattern, "seed": args.seed,
                "steps_blockwise": args.steps_blockwise, "steps_end_to_end": args.steps_end_to_end,
                "lr": args.lr, "batch": args.batch, "clips": args.clips, "clip": args.clip, "prompts": list(prompts),
                "group": group}
    out = Hybridizer(teacher, opts).run(resume=RunFolder(args.out).prepare(args.resume, settings))
    if out is not None and (not dist.is_initialized() or dist.get_rank() == 0):
        print(f"wrote {out}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def _clip(text: str) -> tuple[int, int, int]:
    try:
        frames, height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RequestError(f"--clip {text!r}: expected FRAMESxHEIGHTxWIDTH, e.g. 9x64x64") from None
    return frames, height, width


def _read_prompts(path: str) -> tuple[str, ...]:
    from ..train.trainer import prompt_lines

    try:
        prompts = prompt_lines(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--prompts {path}: cannot read it ({e}); expected a UTF-8 text file, one prompt per line") from e
    if not prompts:
        raise ValueError(f"--prompts {path} holds no prompt; write one prompt per line")
    return prompts
