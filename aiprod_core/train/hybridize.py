"""Hybridization: an AIPROD model whose pattern turns some attention blocks (A) into 3D-conv blocks (C), distilled
from the model it comes from (the teacher).

The student is the teacher with a new pattern: every kept block keeps its weights, and so do the input and output
projections, the time and caption embeddings and AdaLN-single; each replaced position gets a fresh conv block, which
starts with the MLP of the attention block it replaces. Only the fresh blocks train, in two stages:

1. block-wise: each fresh block maps the teacher block's input to that block's output (a group's blocks at once,
   the teacher's activations caught by forward hooks on a teacher run over noised latents, recomputed every step);
2. end to end: the student's velocity matches the teacher's (MSE) on noised latents with the same text context.

The fresh blocks train `group` at a time (all at once by default), each group through both stages; a teacher too
large for the GPU is placed as LoRA training places a frozen model (memory/hybridize_plan.py plans an LTX-2 teacher
in a budget): its blocks stream, the group's stay on the device, and the other fresh blocks wait, frozen.

The teacher is an AIPROD checkpoint or an LTX-2 one (its student: families/ltx2/hybrid.py, written as the teacher's
file with the transformer replaced). The latents are the teacher's own generations from a prompt list (no video data
needed) or the synthetic world's clips (train/distil_data.py). Both stages draw noise levels from the sampler's own
schedule, so the student learns the denoising it will be asked for. Every random choice of a step is drawn from a
generator seeded by (seed, stage, step), so `--resume` reaches the weights an uninterrupted run reaches. Under
torchrun every process draws the same batch and computes its share of it; the gradients are averaged in one
all-reduce, so the processes reach the weights one process reaches with the same batch. The first process makes the
latents and writes every file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..checkpoint import save_checkpoint
from ..config import ModelConfig
from ..families.ltx2.hybrid import save_hybrid, student_transformer
from ..memory.hybridize_plan import STAGES as PLAN_STAGES
from ..memory.hybridize_plan import fresh_groups
from ..memory.placement import Placement
from ..model import AIPROD, VideoModel
from ..models.backbone import HybridBackbone
from .data import item_seed
from .ddp import average_gradients
from .distil_data import ClipSet, load_clips, sampler_sigmas, save_clips, teacher_generations, world_clips
from .objectives import noised
from .options import RunOptions
from .plots import loss_curve_png
from .run import RunFolder
from .state import load_state, save_state

log = logging.getLogger(__name__)

STAGES = ("blockwise", "end_to_end")


def replaced_blocks(teacher_pattern: str, pattern: str) -> list[int]:
    """The positions whose attention block becomes a conv block; refuse a pattern that cannot be distilled."""
    if len(pattern) != len(teacher_pattern):
        raise ValueError(f"--pattern {pattern!r} has {len(pattern)} blocks but the teacher has {len(teacher_pattern)} "
                         f"({teacher_pattern!r}); give one letter per teacher block, A to keep it, C for a conv block")
    bad = sorted(set(pattern) - {"A", "C"})
    if bad:
        raise ValueError(f"--pattern {pattern!r} holds {bad}; use 'A' (keep the attention block) and 'C' (conv block)")
    # a C that becomes an A would be an attention block from random weights: the teacher has no attention block
    # there to distil it from, and a conv block cannot teach attention to the text
    grown = [i for i, (t, s) in enumerate(zip(teacher_pattern, pattern)) if t == "C" and s == "A"]
    if grown:
        raise ValueError(f"--pattern {pattern!r} turns the teacher's conv block {grown[0]} into an attention block; "
                         "there is no attention block to distil it from: keep a C where the teacher has one "
                         f"(teacher: {teacher_pattern!r})")
    if "A" not in pattern:
        raise ValueError(f"--pattern {pattern!r} has no attention block; text enters through them, so keep at least one A")
    replaced = [i for i, (t, s) in enumerate(zip(teacher_pattern, pattern)) if t != s]
    if not replaced:
        raise ValueError(f"--pattern {pattern!r} is the teacher's own pattern: nothing to replace; turn some A into C")
    return replaced


def teacher_pattern(teacher: VideoModel) -> str:
    """The teacher's blocks, one letter each (an LTX-2 transformer's are all A unless it is a hybrid already)."""
    if teacher.family is AIPROD:
        return teacher.config.backbone.pattern
    return teacher.config.transformer.block_kinds


def build_student(teacher: VideoModel, pattern: str, seed: int = 0) -> tuple[VideoModel, list[int]]:
    """The student model and its fresh blocks' positions. Its VAE, text encoder and upscaler are the teacher's
    modules (shared, frozen); its backbone is new, holding copies of every teacher weight outside the fresh blocks."""
    replaced = replaced_blocks(teacher_pattern(teacher), pattern)
    if teacher.family is not AIPROD:
        backbone = student_transformer(teacher.backbone, pattern, replaced, seed)
        config = dataclasses.replace(teacher.config, transformer=backbone.cfg)
        student = dataclasses.replace(teacher, config=config, backbone=backbone,
                                      source=f"hybrid of {teacher.source}", trained=False, loras=())
        return student, replaced
    config = dataclasses.replace(teacher.config, backbone=dataclasses.replace(teacher.config.backbone, pattern=pattern))
    config.validate()
    with torch.random.fork_rng(devices=[]):  # the fresh blocks from the run's seed, whatever was drawn before
        torch.manual_seed(seed)
        backbone = HybridBackbone(config.backbone)
    fresh = tuple(f"blocks.{i}." for i in replaced)
    state = {k: v for k, v in teacher.backbone.state_dict().items() if not k.startswith(fresh)}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.startswith(fresh)]
    if left or unexpected:  # the same config but the pattern: anything else would be a bug here
        raise RuntimeError(f"student and teacher differ outside the replaced blocks: {left[:3]} {unexpected[:3]}")
    for i in replaced:  # the conv takes over the attentions; the block's MLP, which reads their result, is kept
        backbone.blocks[i].ff.load_state_dict(teacher.backbone.blocks[i].ff.state_dict())
    backbone.to(next(teacher.backbone.parameters()))
    student = dataclasses.replace(teacher, config=config, backbone=backbone.eval(), source=f"hybrid of {teacher.source}",
                                  trained=False, loras=())
    return student, replaced


@dataclass(frozen=True)
class HybridizeOptions:
    """A hybridization run. prompts: distil on the teacher's own generations for these prompts (sampled with
    `sampler_steps` steps at CFG `cfg`); none: on the synthetic world's clips. clip: (frames, height, width) of those
    latents (None: the teacher's); clips: how many to distil on, heldout: how many measure the velocity error;
    sampler_steps: the schedule whose noise levels are drawn; device: where the run computes (None: where the teacher
    is); group: how many fresh blocks train at a time, each group through both stages (0: all at once);
    placement: where the blocks are while each stage runs (memory/hybridize_plan.py plans it for a GPU budget; a
    streamed teacher stays in CPU memory and visits `placement.device` block by block; None: where they are)."""

    run: RunOptions
    pattern: str
    steps_blockwise: int = 200
    steps_end_to_end: int = 200
    lr: float = 1e-3
    batch: int = 4
    clips: int = 32
    heldout: int = 4
    clip: tuple[int, int, int] | None = None
    sampler_steps: int = 20
    prompts: tuple[str, ...] = ()
    cfg: float = 3.0
    device: str | None = None
    group: int = 0
    placement: Placement | None = None

    def __post_init__(self):
        for name in ("steps_blockwise", "steps_end_to_end"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}; expected a step count >= 0")
        for name in ("batch", "clips", "heldout", "sampler_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected 1 or more")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr}; expected a learning rate above 0")
        if self.group < 0:
            raise ValueError(f"group={self.group}; expected how many fresh blocks train at a time (0: all)")

    def steps(self, stage: int) -> int:
        return (self.steps_blockwise, self.steps_end_to_end)[stage]


class Hybridizer:
    """Distils `teacher` into a student of `opts.pattern`; `run` writes the student as an AIPROD checkpoint."""

    def __init__(self, teacher: VideoModel, opts: HybridizeOptions):
        self.teacher, self.opts = teacher, opts
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if opts.batch % self.world:
            raise ValueError(f"batch={opts.batch} does not split over {self.world} processes; use a multiple of "
                             f"{self.world}")
        if opts.device is not None and opts.placement is None:  # placed: the blocks visit the device in turn
            for m in (teacher.backbone, teacher.vae, teacher.text_encoder):
                if m is not None:
                    m.to(opts.device)
        self.folder = RunFolder(opts.run.out_dir)
        self.student, self.replaced = build_student(teacher, opts.pattern, opts.run.seed)
        for m in (teacher.backbone, teacher.vae, teacher.text_encoder, self.student.backbone):
            if m is not None:  # a teacher given its clips (`run(clips=...)`) needs no VAE nor text encoder
                m.requires_grad_(False).eval()
        # fresh weights train in float32 whatever the teacher's dtype: bf16 AdamW steps would round away
        self.fresh = torch.nn.ModuleList(self.student.backbone.blocks[i] for i in self.replaced).float()
        self.groups = fresh_groups(self.replaced, opts.group)
        self.home = next(teacher.backbone.parameters()).device  # where the blocks rest between their turns
        self.device = opts.placement.device if opts.placement is not None else self.home
        self.dtype = next(teacher.backbone.parameters()).dtype  # what the teacher computes in: the students too

    @property
    def data_path(self) -> Path:
        return self.folder.path / "distil_data.safetensors"

    # -- data -----------------------------------------------------------------------------------------------------
    def _data(self) -> dict[str, ClipSet]:
        """The training and held-out latents: read back from the run folder, or made and kept there."""
        if self.data_path.is_file():
            return load_clips(self.data_path)
        c, o = self.teacher.config, self.opts
        clip = o.clip or (c.frames, c.height, c.width)
        if o.prompts:
            def make(count, stream):
                return teacher_generations(self.teacher, o.prompts, count, clip, o.run.seed, stream, o.sampler_steps,
                                           o.cfg)
        else:
            def make(count, stream):
                return world_clips(self.teacher, count, clip, o.run.seed, stream)
        sets = {"train": make(o.clips, 0), "heldout": make(o.heldout, 1)}
        save_clips(self.data_path, sets)
        return sets

    def _batch(self, clips: ClipSet, gen: torch.Generator, n: int, sigmas: torch.Tensor | None = None):
        """(x_t, sigma, context, mask): n clips and sampler noise levels drawn with `gen`, or, given `sigmas`, every
        clip once at those levels."""
        if sigmas is None:
            idx = torch.randint(len(clips), (n,), generator=gen)
            sigmas = self.sigmas[torch.randint(len(self.sigmas), (n,), generator=gen)]
        else:
            idx = torch.arange(len(clips))
        x0 = clips.latents[idx]
        noise = torch.randn(x0.shape, generator=gen)
        d = self.device
        return noised(x0, noise, sigmas).to(d), sigmas.to(d), clips.context[idx].to(d), clips.mask[idx].to(d)

    # -- placement ------------------------------------------------------------------------------------------------
    def _placed(self, model: str, stage: int, group: list[int] = ()):
        """The teacher's or the student's backbone placed for `stage` (blocks of `group`, which train, moved to the
        device whole), and the forward in the teacher's compute dtype; nothing is moved without a placement."""
        backbone = (self.teacher if model == "teacher" else self.student).backbone
        ctx = ExitStack()
        if self.opts.placement is not None:
            ctx.enter_context(self.opts.placement.backbone(backbone, PLAN_STAGES[stage], keep=frozenset(group)))
        # float32 fresh blocks inside a lower-precision model: autocast gives every layer the teacher's dtype
        ctx.enter_context(torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32))
        return ctx

    # -- losses ---------------------------------------------------------------------------------------------------
    def _blockwise_loss(self, group: list[int], x_t, sigma, context, mask) -> torch.Tensor:
        """Mean over the group's fresh blocks of the MSE between each one's output and the teacher block's, both
        given the teacher block's input (teacher forcing: an early fresh block's error does not reach a later one).
        The teacher runs placed (the caller's context); the group's blocks are on the device."""
        caught: dict[int, tuple] = {}
        hooks = [self.teacher.backbone.blocks[i].register_forward_hook(
            lambda _m, args, out, i=i: caught.__setitem__(i, (args, out))) for i in group]
        try:
            with torch.no_grad():
                self.teacher.backbone(x_t, sigma, context, mask)
        finally:
            for h in hooks:
                h.remove()
        grid = {"grid": tuple(x_t.shape[2:])}  # an LTX-2 conv block is told the latent grid its tokens lie on
        losses = [F.mse_loss(block(*caught[i][0], **(grid if getattr(block, "takes_grid", False) else {})).float(),
                             caught[i][1].float())
                  for i, block in ((i, self.student.backbone.blocks[i]) for i in group)]
        return torch.stack(losses).mean()

    def _teacher_velocity(self, batches: list[tuple]) -> list[torch.Tensor]:
        with self._placed("teacher", 1), torch.no_grad():
            return [self.teacher.backbone(*b).float() for b in batches]

    def velocity_error(self, group: list[int] = ()) -> float:
        """MSE between the student's and the teacher's velocity on the fixed held-out batch."""
        with self._placed("student", 1, group), torch.no_grad():
            return F.mse_loss(self.student.backbone(*self.heldout).float(), self.heldout_target).item()

    # -- the loop -------------------------------------------------------------------------------------------------
    def run(self, resume: bool = False, clips: dict[str, ClipSet] | None = None) -> Path | None:
        """Both stages, then the student's checkpoint (its path; None when stopped by `stop_after`). clips: the
        "train" and "heldout" latents to distil on (kept in the run folder) instead of making them."""
        self.folder.path.mkdir(parents=True, exist_ok=True)
        resume = resume and self.folder.state.is_file()
        if not resume and self.rank == 0:  # clips drawn for other settings must not be read back
            self.data_path.unlink(missing_ok=True)
            if clips is not None:
                save_clips(self.data_path, clips)
        sets = self._data() if self.rank == 0 else None
        self._barrier()  # the first process made them: the others read them
        sets = sets or load_clips(self.data_path)
        self.train = sets["train"]
        shape = tuple(self.train.latents.shape)
        self.sigmas = sampler_sigmas(self.teacher, shape, self.opts.sampler_steps)
        held = sets["heldout"]
        # held-out noise levels spread over the whole schedule, not drawn: the error is comparable step to step
        levels = self.sigmas[torch.linspace(0, len(self.sigmas) - 1, len(held)).round().long()]
        self.heldout = self._batch(held, torch.Generator().manual_seed(item_seed(self.opts.run.seed, 9)),
                                   len(held), levels)
        self.heldout_target = self._teacher_velocity([self.heldout])[0]
        pos, optim_state = {"stage": 0, "group": 0, "step": 0, "global_step": 0}, None
        if resume:
            pos, optim_state = load_state(self.folder.state, {"fresh": self.fresh}, complete=True)
            self.folder.trim_log(pos["global_step"])
            log.info("resuming at stage %s, group %d, step %d", STAGES[min(pos["stage"], 1)], pos["group"] + 1,
                     pos["step"])
        elif self.rank == 0:
            self.folder.log.unlink(missing_ok=True)
            self.folder.append_log({"global_step": 0, "stage": "start", "step": 0,
                                    "velocity_error": self.velocity_error()})
        self.global_step = pos["global_step"]
        for si in range(pos["stage"], len(STAGES)):
            for gi in range(pos["group"] if si == pos["stage"] else 0, len(self.groups)):
                first = (si, gi) == (pos["stage"], pos["group"])
                if self._run_group(si, gi, pos["step"] if first else 0, optim_state if first else None):
                    return None
        return self._finish()

    def _run_group(self, si: int, gi: int, start: int, optim_state: dict | None) -> bool:
        """Stage `si` for the fresh blocks of group `gi` from `start`; True when the run stops here (stop_after).
        The steps run in chunks that end at each logged step: the teacher's and the student's blocks are placed once
        a chunk, and the end-to-end targets of a chunk are the teacher's velocities made before it."""
        run, steps, group = self.opts.run, self.opts.steps(si), self.groups[gi]
        blocks = torch.nn.ModuleList(self.student.backbone.blocks[i] for i in group).to(self.device)
        blocks.requires_grad_(True)
        optimizer = torch.optim.AdamW(blocks.parameters(), lr=self.opts.lr, weight_decay=0.0)
        if optim_state is not None:
            optimizer.load_state_dict(optim_state)
        name = STAGES[si] if len(self.groups) == 1 else f"{STAGES[si]} {gi + 1}/{len(self.groups)}"
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=name, unit="step", disable=not run.progress)
        done = start
        try:
            while done < steps:
                logged = done if done % run.log_every == 0 else (done // run.log_every + 1) * run.log_every
                chunk = range(done, min(steps, logged + 1))
                # every process draws the whole batch of a step (the same generator) and computes its share
                mine = slice(self.rank, None, self.world)
                batches = [tuple(t[mine] for t in self._batch(
                    self.train, torch.Generator().manual_seed(item_seed(run.seed, si, step)), self.opts.batch))
                    for step in chunk]
                targets = self._teacher_velocity(batches) if si == 1 else [None] * len(batches)
                with self._placed("teacher" if si == 0 else "student", si, group):
                    for step, batch, target in zip(chunk, batches, targets):
                        # a short linear warm-up: fresh Adam moments' first steps would undo part of the stage
                        for g in optimizer.param_groups:
                            g["lr"] = self.opts.lr * min(1.0, (step + 1) / max(1, min(20, steps // 10)))
                        if si == 0:
                            loss = self._blockwise_loss(group, *batch)
                        else:
                            loss = F.mse_loss(self.student.backbone(*batch).float(), target)
                        optimizer.zero_grad(set_to_none=True)
                        # block-wise, each block's gradient is that of its own error, however many share the step
                        (loss * len(group) if si == 0 else loss).backward()
                        if self.world > 1:
                            loss = average_gradients(list(blocks.parameters()), loss, self.device)
                        optimizer.step()
                        self.global_step += 1
                        done = step + 1
                        bar.update(1)
                        if step < chunk[-1] and self._after_step(si, gi, done, steps, loss, optimizer):
                            return True
                # the chunk's last step is the logged one; its velocity error places the student, so it comes after
                if self.rank == 0:
                    err = self.velocity_error(group)
                    self.folder.append_log({"global_step": self.global_step, "stage": STAGES[si], "step": done,
                                            "loss": loss.item(), "velocity_error": err, "time": time.time(),
                                            **({"group": gi + 1} if len(self.groups) > 1 else {})})
                    bar.set_postfix(loss=f"{loss.item():.4g}", velocity_error=f"{err:.4g}")
                if self._after_step(si, gi, done, steps, loss, optimizer):
                    return True
        except BaseException as e:  # Ctrl-C, SIGTERM or a host's interrupt: keep the last completed step
            if self.world > 1 and not isinstance(e, KeyboardInterrupt):
                raise  # another process may be gone: no barrier to wait at
            self._save({"stage": si, "group": gi, "step": done, "global_step": self.global_step}, optimizer)
            self.plot()
            log.warning("stopped (%s): state saved to %s; continue with --resume", type(e).__name__, self.folder.state)
            raise
        finally:
            bar.close()
            blocks.requires_grad_(False).to(self.home)
        following = (si, gi + 1) if gi + 1 < len(self.groups) else (si + 1, 0)
        self._save({"stage": following[0], "group": following[1], "step": 0, "global_step": self.global_step}, None)
        self.plot()
        return run.stop_after is not None and self.global_step >= run.stop_after

    def _after_step(self, si: int, gi: int, done: int, steps: int, loss: torch.Tensor, optimizer) -> bool:
        """Report, save and stop after a step (logged first, when it is); True when the run stops here."""
        run = self.opts.run
        if run.on_step is not None:  # may raise (a host's interrupt): after the step is logged
            run.on_step({"global_step": self.global_step, "phase": STAGES[si], "loss": loss.item()})
        if done == steps:
            return False
        position = {"stage": si, "group": gi, "step": done, "global_step": self.global_step}
        if run.checkpoint_every and self.global_step % run.checkpoint_every == 0:
            self._save(position, optimizer)
        if run.stop_after is not None and self.global_step >= run.stop_after:
            self._save(position, optimizer)
            return True
        return False

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def plot(self) -> None:
        """The run folder's loss curve (loss.png) from its log, each stage's start marked."""
        if self.rank:
            return
        rows = [r for r in self.folder.log_rows() if "loss" in r]
        starts: dict[str, int] = {}
        for r in rows:
            starts.setdefault(r["stage"], r["global_step"])
        loss_curve_png(self.folder.curve, [r["global_step"] for r in rows], [r["loss"] for r in rows], starts)

    def _save(self, position: dict, optimizer) -> None:
        if self.rank == 0:
            save_state(self.folder.state, {"fresh": self.fresh}, optimizer, position)
        self._barrier()

    def _finish(self) -> Path:
        path = Path(self.opts.run.result_path or self.folder.path / f"{self.opts.run.name}.safetensors")
        self.fresh.to(self.dtype)  # trained in float32; the student is stored as its teacher
        if self.rank == 0:
            self._write(path)
        self._barrier()
        return path

    def _write(self, path: Path) -> None:
        """The student: an AIPROD checkpoint, or for an LTX-2 teacher the teacher's file with its transformer."""
        s = self.student
        if self.teacher.family is not AIPROD:
            save_hybrid(self.teacher.source, s.backbone, path, {"aiprod.teacher": os.path.basename(self.teacher.source),
                                                                "aiprod.steps": str(self.global_step)})
            return
        config: ModelConfig = dataclasses.replace(s.config, name=self.opts.run.name)
        parts = {"backbone": s.backbone, "vae": s.vae, "text_encoder": s.text_encoder}
        if s.upscaler is not None:
            parts["upscaler"] = s.upscaler
        meta = {"aiprod.teacher": os.path.basename(str(self.teacher.source)),
                "aiprod.teacher_pattern": self.teacher.config.backbone.pattern,
                "aiprod.steps": str(self.global_step)}
        save_checkpoint(path, config, parts, meta)
