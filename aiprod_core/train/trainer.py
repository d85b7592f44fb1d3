"""The curriculum trainer: full training (VAE, then backbone + text encoder, then upscaler) or LoRA.

Every random choice of a step (clips, caption dropout, sigmas, noise) is drawn from a generator seeded
by (seed, phase, step, item), so `--resume` and a multi-process run reach the weights an uninterrupted
single-process run reaches. Data parallelism: each process takes items rank, rank + world, ... of the
global batch and gradients are averaged across processes with an all-reduce before each update.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..checkpoint import save_checkpoint
from ..flow.warp import warp_noise
from ..memory.engine import precision_dtype
from ..memory.placement import Placement
from ..model import VideoModel
from ..models.lora import TEXT_PREFIX, LoRA, apply_loras, save_lora
from ..models.upscaler import upsample_latent
from ..pipeline import generate
from ..sampling import noise_like
from ..text import EmbeddingCache, encode_cached
from ..video_io import write_video
from .data import ATTRIBUTE_CLASSES, Sample, WorldData, area_downscale, item_seed
from .ddp import average_gradients
from .objectives import (
    AttributeHeads,
    colour_contrast_loss,
    colour_swapped,
    flow_loss,
    noised,
    output_preservation_loss,
    sample_sigmas,
    vae_loss,
)
from .options import TrainOptions
from .phases import Phase
from .plots import loss_curve_png
from .run import RunFolder
from .state import load_state, save_state

log = logging.getLogger(__name__)

VALIDATION_PROMPTS = (
    "a red circle moving to the left",
    "un carré bleu qui monte",
    "一个绿色的三角形向右移动",
    "دائرة صفراء تتحرك إلى الأسفل",
)


def prompt_lines(text: str) -> tuple[str, ...]:
    """Preservation prompts written one per line (a file, a node's text box): blank lines dropped."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class Trainer:
    def __init__(self, model: VideoModel, phases: list[Phase], opts: TrainOptions, data=None):
        self.model, self.phases, self.opts = model, phases, opts
        self.data = data or WorldData(opts.run.seed)
        self.folder = RunFolder(opts.run.out_dir)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self._check_phases()
        self._check_family()
        torch.manual_seed(opts.run.seed)  # first: what the run draws (heads, adapters) must not depend on what came before
        # the text encoder's attribute heads, for full training's text-side loss
        self.heads = None if model.family.lora_only else AttributeHeads(model.config.text.dim, ATTRIBUTE_CLASSES)
        lo = opts.lora
        self.targets = model.family.lora_targets(lo.targets) if lo is not None else ()
        self.lora = LoRA.create(model.backbone, lo.rank, lo.alpha, self.targets) if lo is not None else None
        self.text_lora = None
        if lo is not None and lo.text_targets:
            self.text_lora = LoRA.create(model.text_encoder, lo.rank, lo.alpha, lo.text_targets, prefix=TEXT_PREFIX)
        place = opts.placement
        self.device = torch.device(place.device) if place.device else next(model.backbone.parameters()).device
        self.autocast = precision_dtype(place.precision, self.device) == torch.bfloat16
        # the frozen backbone streams, or stays where it is until a phase places it as planned
        placements = [self._placement(p) for p in phases] if self.lora is not None else []
        planned = any(p.planned for p in placements)
        self.streams = planned or (self.lora is not None and place.offload == "stream")
        self.streamer = None  # the running phase's BlockStreamer, when its blocks stream
        # a streamed run keeps the text encoder in CPU memory (a umT5 alone outgrows 8 GB) unless the plan leaves
        # room for it: captions are encoded there and only their embeddings move; text adapters train there, their
        # gradients coming back through the move
        on_cpu = self.streams and not (planned and self._text_fits(placements))
        self.text_device = torch.device("cpu") if on_cpu else self.device
        # user clips' latents are encoded once and cached on disk: their VAE stays in CPU memory, outside the plan
        self.caches_latents = self.streams and getattr(self.data, "cache_dir", None) is not None
        stay = {"backbone", "vae"} if self.caches_latents else {"backbone"}
        if self.caches_latents:
            self.data.encode_device = self.device
        for name, m in self.modules().items():
            made_here = name in ("heads", "lora", "text_lora")  # made on the CPU: they train where the model runs
            if made_here or (place.device is not None and not (name in stay and self.streams)):
                m.to(self.text_device if name in ("text_encoder", "text_lora") else self.device)
        self.history: list[dict] = []
        # a LoRA run's frozen text encoder computes each caption's embedding once
        self.text_cache = EmbeddingCache(max_items=4096, directory=self.folder.cache / "text")

    def _check_phases(self) -> None:
        user_data = not isinstance(self.data, WorldData)
        for p in self.phases:
            if p.batch % self.world:
                raise ValueError(f"phase {p.name!r}: batch={p.batch} does not split over {self.world} processes; "
                                 f"use a multiple of {self.world}")
            if p.caption_distractors and user_data:
                log.warning("phase %s: caption_distractors applies to the synthetic world's captions only; "
                            "a user's captions are used as written", p.name)
            if p.world_pool and user_data:
                log.warning("phase %s: world_pool applies to the synthetic world; a user's clips are each encoded "
                            "once and cached anyway", p.name)
            if self.opts.lora is not None and p.stage != "backbone":
                raise ValueError("LoRA training adapts the backbone (and the text encoder) only; every phase needs "
                                 "stage='backbone'")

    def _check_family(self) -> None:
        family, lo = self.model.family, self.opts.lora
        if not family.lora_only:
            return
        name = Path(self.model.source).name if self.model.source else "the model"
        if lo is None:
            raise ValueError(f"{name} is an {family.title} model, which this trainer adapts with a LoRA only (its "
                             "weights stay frozen); give a LoRA rank (--lora-rank 16, or the LoRA trainer node)")
        if lo.text_targets:
            raise ValueError(f"{name} is an {family.title} model, whose text encoder (Gemma 3 with its connector) "
                             "takes no adapters here; leave out the text-encoder LoRA (--lora-text-encoder)")

    # -- what is saved and what is trained ------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        m = self.model
        mods = {"backbone": m.backbone, "vae": m.vae, "text_encoder": m.text_encoder}
        if self.heads is not None:
            mods["heads"] = self.heads
        if m.upscaler is not None:
            mods["upscaler"] = m.upscaler
        if self.lora is not None:
            mods["lora"] = self.lora
        if self.text_lora is not None:
            mods["text_lora"] = self.text_lora
        return mods

    def saved(self) -> dict[str, torch.nn.Module]:
        """What the training state holds: a LoRA run's adapters (the frozen model is the file it loaded), else
        every module."""
        if self.lora is None:
            return self.modules()
        return {k: v for k, v in self.modules().items() if k in ("lora", "text_lora")}

    def trainable(self, phase: Phase) -> list[torch.nn.Module]:
        m = self.model
        if phase.stage == "vae":
            return [m.vae]
        if phase.stage == "decoder":
            return [m.vae.decoder]
        if phase.stage == "upscaler":
            if m.upscaler is None:
                raise ValueError("the recipe has an upscaler phase but the model config has no upscaler")
            return [m.upscaler]
        if self.lora is not None:
            return [self.lora] if self.text_lora is None else [self.lora, self.text_lora]
        return [m.backbone, m.text_encoder, self.heads] if phase.train_text_encoder else [m.backbone]

    @property
    def state_path(self) -> Path:
        return self.folder.state

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> Path | None:
        """Train through all phases; return the final model or LoRA file (None when stopped early)."""
        self.folder.path.mkdir(parents=True, exist_ok=True)
        pos = {"phase": 0, "step": 0, "global_step": 0}
        optim_state = None
        if resume and self.state_path.is_file():
            # a LoRA state written before states held only the adapters carries the frozen modules too: not read
            frozen = set(self.modules()) - set(self.saved())
            pos, optim_state = load_state(self.state_path, self.saved(), complete=True, ignore=frozen)
            self._trim_log(pos["global_step"])
            log.info("resuming at phase %d step %d", pos["phase"], pos["step"])
        elif resume:
            log.warning("no training state in %s: starting from the beginning", self.folder.path)
        self.global_step = pos["global_step"]
        stopped = False
        for pi in range(pos["phase"], len(self.phases)):
            phase = self.phases[pi]
            start = pos["step"] if pi == pos["phase"] else 0
            stopped = self._run_phase(pi, phase, start, optim_state if pi == pos["phase"] else None)
            if stopped:
                return None
        return self._finish()

    def _run_phase(self, pi: int, phase: Phase, start: int, optim_state: dict | None) -> bool:
        run = self.opts.run
        for m in self.modules().values():
            m.requires_grad_(False)
            m.eval()
        train_mods = self.trainable(phase)
        params = [p for m in train_mods for p in m.parameters()]
        for m in train_mods:
            m.requires_grad_(True)
            m.train()
        gc = self.opts.placement.gradient_checkpointing
        self.model.backbone.gradient_checkpointing = self.device.type == "cuda" if gc is None else gc
        optimizer = torch.optim.AdamW(params, lr=phase.lr, weight_decay=self.opts.optimizer.weight_decay)
        if optim_state is not None:
            optimizer.load_state_dict(optim_state)
        from tqdm.auto import tqdm

        bar = tqdm(total=phase.steps, initial=start, desc=f"{pi + 1}/{len(self.phases)} {phase.name}",
                   unit="step", disable=not self.opts.run.progress or self.rank != 0)
        done = start  # steps of this phase completed
        streaming = ExitStack()  # closed in the `finally` below
        if self.streams and phase.stage == "backbone":
            if self.caches_latents:  # the clips' latents first, while the GPU is still empty
                self.data.cache_phase(phase, progress=self.opts.run.progress and self.rank == 0, share=(self.rank, self.world))
                if self.world > 1:
                    dist.barrier()  # each process encoded its share; all read them from the disk cache
            self.streamer = streaming.enter_context(self._placed_backbone(phase))
        try:
            for step in range(start, phase.steps):
                for g in optimizer.param_groups:
                    g["lr"] = self._lr(phase, step)
                loss, parts = self._step(pi, phase, step, params, optimizer)
                self.global_step += 1
                done = step + 1
                bar.update(1)
                if step % run.log_every == 0 or step == phase.steps - 1:
                    self._log({"global_step": self.global_step, "phase": phase.name, "step": step + 1,
                               "loss": loss, "lr": optimizer.param_groups[0]["lr"], **parts})
                    bar.set_postfix(loss=f"{loss:.4f}")
                if run.on_step is not None:  # may raise (a host's interrupt): after the step is logged
                    run.on_step({"global_step": self.global_step, "phase": phase.name, "loss": loss})
                position = {"phase": pi, "step": step + 1, "global_step": self.global_step}
                if step + 1 == phase.steps:
                    break
                if run.checkpoint_every and self.global_step % run.checkpoint_every == 0:
                    self._save(position, optimizer)
                if run.stop_after is not None and self.global_step >= run.stop_after:
                    self._save(position, optimizer)
                    return True
        except BaseException as e:  # Ctrl-C, SIGTERM or a host's interrupt: keep the last completed step
            if self.world == 1 or isinstance(e, KeyboardInterrupt):
                self._save({"phase": pi, "step": done, "global_step": self.global_step}, optimizer)
                log.warning("stopped (%s): training state saved to %s; continue with --resume",
                            type(e).__name__, self.state_path)
            raise
        finally:
            bar.close()
            streaming.close()
            self.streamer = None
        self._end_phase(pi, phase)
        self._save({"phase": pi + 1, "step": 0, "global_step": self.global_step}, None)
        return run.stop_after is not None and self.global_step >= run.stop_after

    def _lr(self, phase: Phase, step: int) -> float:
        if step < phase.warmup:
            return phase.lr * (step + 1) / phase.warmup
        t = (step - phase.warmup) / max(1, phase.steps - phase.warmup)
        return phase.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    def _placement(self, phase: Phase) -> Placement:
        """Where a LoRA phase's frozen backbone goes: planned for its clips and batch per process (offload 'auto'),
        every block streamed ('stream'), or left where it is."""
        spec = phase.spec
        return Placement.for_training(
            self.model.config, (spec.frames, spec.height, spec.width), max(1, phase.batch // self.world), self.device,
            vram_gb=self.opts.placement.vram_gb, offload=self.opts.placement.offload, lora_rank=self.opts.lora.rank,
            compute=torch.bfloat16 if self.autocast else torch.float32, weights=next(self.model.backbone.parameters()).dtype)

    def _text_fits(self, placements: list[Placement]) -> bool:
        """Whether the text encoder fits on the device beside the largest phase's planned training peak."""
        room = min(p.room_bytes("lora_training") for p in placements)
        return sum(p.numel() * p.element_size() for p in self.model.text_encoder.parameters()) <= room

    def _placed_backbone(self, phase: Phase):
        """The frozen backbone on the device for a LoRA phase, placed as planned when it was (measured now)."""
        placement = self._placement(phase)
        lp = placement.stage("lora_training")
        if lp is not None:
            log.info("phase %s: %d blocks resident, %d streamed (prefetch %d), %s weights; about %.2f GB", phase.name,
                     lp.blocks_resident, lp.blocks_streamed, lp.prefetch, lp.weight_dtype, lp.peak_bytes / 2**30)
        return placement.backbone(self.model.backbone, "lora_training")

    def _step(self, pi: int, phase: Phase, step: int, params: list, optimizer) -> tuple[float, dict]:
        items = list(range(self.rank, phase.batch, self.world))
        samples = [self.data.sample(phase, pi, step, i) for i in items]
        gens = [torch.Generator().manual_seed(item_seed(self.opts.run.seed, pi, step, i, 1)) for i in items]
        with self._adapters(phase):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                loss, parts = getattr(self, f"_loss_{phase.stage}")(phase, samples, gens)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # adapters still applied: checkpointed blocks re-run through them
        loss_value = (average_gradients(params, loss, self.device) if self.world > 1 else loss).item()
        if self.opts.optimizer.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, self.opts.optimizer.grad_clip)
        optimizer.step()
        return loss_value, parts

    def _adapters(self, phase: Phase):
        """The LoRA hooks for a step's forward and backward (a LoRA run's backbone phases), else nothing."""
        if self.lora is None or phase.stage != "backbone":
            return nullcontext()
        stack = ExitStack()
        stack.enter_context(apply_loras(self.model.backbone, [(self.lora, 1.0)]))
        if self.text_lora is not None:
            stack.enter_context(apply_loras(self.model.text_encoder, [(self.text_lora, 1.0)]))
        return stack

    def _videos(self, samples: list[Sample]) -> torch.Tensor:
        return torch.stack([s.video for s in samples]).to(self.device)

    def _loss_vae(self, phase: Phase, samples: list[Sample], gens: list[torch.Generator]):
        video = self._videos(samples)
        shape = self.model.config.vae.latent_shape(*video.shape[2:])
        eps = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(self.device)
        return vae_loss(self.model.vae, video, eps)

    _loss_decoder = _loss_vae  # the frozen encoder gets no gradient; its KL term is then a constant

    def _loss_upscaler(self, phase: Phase, samples: list[Sample], gens: list[torch.Generator]):
        vae = self.model.vae
        video = self._videos(samples)  # [B,3,F,H,W] at the upscaler's output size
        low = area_downscale(video, 2)
        with torch.no_grad():
            z_hi, z_lo = vae.encode(video), vae.encode(low)
        pred = upsample_latent(self.model.upscaler, vae, z_lo)
        loss = F.mse_loss(pred, z_hi)
        return loss, {"latent_mse": loss.item()}

    def _loss_backbone(self, phase: Phase, samples: list[Sample], gens: list[torch.Generator]):
        m = self.model
        drop = [torch.rand((), generator=g).item() < phase.caption_dropout for g in gens]
        captions = ["" if d else s.caption for s, d in zip(samples, drop)]
        x0 = self._latents(samples)
        tokens = x0.shape[2] * x0.shape[3] * x0.shape[4]
        sigma = torch.cat([sample_sigmas(1, tokens, g, shift=phase.sigma_shift) for g in gens]).to(self.device)
        noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in gens]).to(self.device)
        if phase.warped_noise > 0 or any(s.always_warp for s in samples):
            noise = self._warped(phase, samples, noise, gens)
        generate = None
        if phase.first_frame > 0:  # drawn last, so a phase without it sees the same random numbers as before
            generate = torch.ones(x0.shape[0], 1, x0.shape[2], 1, 1)
            for j, g in enumerate(gens):
                if torch.rand((), generator=g).item() < phase.first_frame:
                    generate[j, :, 0] = 0
        parts = {}
        if self.lora is not None:  # adapters applied by _step
            context, mask = self._lora_context(captions)
            loss = flow_loss(m.backbone, x0, context, mask, sigma, noise, generate, m.family.voxel_sigma)
            prompts = self.opts.preservation.prompts
            if prompts:
                picks = [prompts[int(torch.randint(len(prompts), (), generator=g))] for g in gens]
                p_context, p_mask = self._lora_context(picks)
                base = None
                if self.text_lora is not None:  # the target: the base model reading the base encoder's embedding
                    with self.text_lora.bypassed():
                        base = encode_cached(m.text_encoder, picks, self.text_cache)[0].to(self.device)
                keep = output_preservation_loss(m.backbone, self.lora, noised(x0, noise, sigma), sigma, p_context,
                                                p_mask, base)
                parts = {"flow": loss.item(), "preserve": keep.item()}
                loss = loss + self.opts.preservation.weight * keep
            return loss, parts
        ids, mask = m.text_encoder.tokenize(captions)
        with torch.set_grad_enabled(phase.train_text_encoder):
            context = m.text_encoder(ids.to(self.device), mask.to(self.device))
        loss = flow_loss(m.backbone, x0, context, mask, sigma, noise, generate, m.family.voxel_sigma)
        parts["flow"] = loss.item()
        if phase.train_text_encoder and phase.text_aux_weight and samples[0].labels is not None:
            labels = {k: torch.tensor([-1 if d else s.labels[k] for s, d in zip(samples, drop)], device=self.device)
                      for k in ATTRIBUTE_CLASSES}
            aux = self.heads(context, mask, labels)
            parts["text_aux"] = aux.item()
            loss = loss + phase.text_aux_weight * aux
        if phase.train_text_encoder and phase.colour_contrast:  # drawn last: phases without it draw as before
            loss = loss + phase.colour_contrast * self._colour_contrast(captions, context, mask, gens, parts)
        return loss, parts

    def _colour_contrast(self, captions: list[str], context, mask, gens, parts: dict) -> torch.Tensor:
        """objectives.colour_contrast_loss over the batch's English captions that name one colour."""
        swapped = [colour_swapped(c, g) for c, g in zip(captions, gens)]
        keep = [i for i, s in enumerate(swapped) if s is not None]
        if not keep:
            return context.new_zeros(())
        te = self.model.text_encoder
        ids, twin_mask = te.tokenize([swapped[i] for i in keep])
        twin_mask = twin_mask.to(self.device)
        twin = te(ids.to(self.device), twin_mask)
        contrast = colour_contrast_loss(context[keep], mask.to(self.device)[keep], twin, twin_mask)
        parts["colour_contrast"] = contrast.item()
        return contrast

    def _latents(self, samples: list[Sample]) -> torch.Tensor:
        """The clean latents [B,C,t,h,w]: cached ones as they are, the rest encoded together; a pooled scene's is
        kept in CPU memory for its next draw."""
        todo = [s for s in samples if s.latent is None]
        if todo:
            with torch.no_grad():
                z = self.model.vae.encode(self._videos(todo)).float()
            for s, zs in zip(todo, z):
                s.latent = zs
                if s.pool_key is not None:
                    self.data.latents[s.pool_key] = zs.cpu()
        return torch.stack([s.latent.to(self.device) for s in samples])

    def _lora_context(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """A LoRA run's caption embeddings: cached while the text encoder is frozen, else through its adapters."""
        te = self.model.text_encoder
        if self.text_lora is None:
            context, mask = encode_cached(te, captions, self.text_cache)
        else:
            ids, mask = te.tokenize(captions)
            mask = mask.to(self.text_device)
            context = te(ids.to(self.text_device), mask)
        return context.to(self.device), mask.to(self.device)

    def _warped(self, phase: Phase, samples: list[Sample], noise: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        """Replace the noise of a `phase.warped_noise` fraction of items, and of every item marked `always_warp`
        (camera moves), by noise warped along the clip's own flow (Go-with-the-Flow's recipe: the model learns that
        the noise's motion is the clip's motion). Items without a flow (clips whose latents are cached) keep i.i.d.
        noise. The draws come after the item's others, so a phase without warped noise sees the same random numbers
        as before."""
        vae = self.model.config.vae
        out = noise.clone()
        for j, (s, g) in enumerate(zip(samples, gens)):
            use = torch.rand((), generator=g).item() < phase.warped_noise or s.always_warp
            seed = int(torch.randint(2**62, (), generator=g))
            if use and s.flow is not None:
                shape = (1, *noise.shape[1:])
                out[j] = warp_noise(s.flow, noise_like(shape, seed), seed, 1.0, vae.spatial_compression,
                                    vae.temporal_compression)[0].to(out)
        return out

    # -- phase ends, files ----------------------------------------------------------------------------
    @torch.no_grad()
    def _end_phase(self, pi: int, phase: Phase) -> None:
        if phase.stage == "vae":
            self._fit_latent_stats(pi, phase)
        if self.rank != 0 or not self.opts.run.validate:
            return
        folder = self.folder.validation(pi, phase.name)
        folder.mkdir(parents=True, exist_ok=True)
        for m in self.modules().values():
            m.eval()
        if phase.stage in ("vae", "decoder"):
            s = self.data.sample(phase, pi, 10**6, 0)
            recon = self.model.vae.decode(self.model.vae.encode(s.video[None].to(self.device)))[0]
            side = torch.cat([s.video, recon.cpu()], dim=3)  # original | reconstruction
            write_video(folder / "reconstruction.mp4", ((side.permute(1, 2, 3, 0) + 1) / 2).clamp(0, 1), fps=self.model.config.fps)
        elif phase.stage == "backbone":
            spec = phase.spec
            model = self.model.with_text_loras([(self.text_lora, 1.0)])  # its own cache key: no cache mixes its embeddings with the base's
            with apply_loras(model.backbone, [(self.lora, 1.0)] if self.lora is not None else []):
                for i, prompt in enumerate(VALIDATION_PROMPTS):
                    video = generate(model, prompt, frames=spec.frames, height=spec.height, width=spec.width,
                                     steps=self.opts.run.validation_steps, seed=i, progress=False)
                    write_video(folder / f"{i}.mp4", video, fps=self.model.config.fps)
                (folder / "prompts.json").write_text(json.dumps(VALIDATION_PROMPTS, ensure_ascii=False, indent=1))
        self._plot()

    def _fit_latent_stats(self, pi: int, phase: Phase, clips: int = 64) -> None:
        """Per-channel mean and std of the encoder's means, so the backbone sees unit-variance latents."""
        vae = self.model.vae
        vae.eval()
        zs = []
        for i in range(clips):
            s = self.data.sample(phase, pi, 10**6 + 1, i)
            zs.append(vae.encode_moments(s.video[None].to(self.device))[0])
        z = torch.cat(zs).transpose(0, 1).flatten(1)  # [C, N]
        vae.latent_mean.copy_(z.mean(1))
        vae.latent_std.copy_(z.std(1).clamp_min(1e-4))

    def _save(self, position: dict, optimizer) -> None:
        if self.rank == 0:
            config = {} if self.model.family.lora_only else {"aiprod.config": self.model.config.to_json()}
            save_state(self.state_path, self.saved(), optimizer, position, config)
        if self.world > 1:
            dist.barrier()

    def _log(self, row: dict) -> None:
        row["time"] = round(time.time(), 3)
        self.history.append(row)
        if self.rank == 0:
            self.folder.append_log(row)

    def _trim_log(self, global_step: int) -> None:
        """Drop log rows written after the state being resumed (they will be written again)."""
        if self.rank != 0:
            return
        self.folder.trim_log(global_step)

    def _plot(self) -> None:
        rows = self.folder.log_rows()
        if not rows:
            return
        starts: dict[str, int] = {}
        for r in rows:
            starts.setdefault(r["phase"], r["global_step"])
        loss_curve_png(self.folder.curve, [r["global_step"] for r in rows], [r["loss"] for r in rows], starts)

    def _finish(self) -> Path:
        run, lo = self.opts.run, self.opts.lora
        path = Path(run.result_path or self.folder.path / f"{run.name}.safetensors")
        if self.rank == 0:
            m = self.model
            if self.lora is not None:
                meta = {"aiprod.base_model": m.config.name, "aiprod.rank": str(lo.rank),
                        "aiprod.targets": ",".join(self.targets), "aiprod.steps": str(self.global_step)}
                if self.text_lora is not None:
                    meta["aiprod.text_targets"] = ",".join(lo.text_targets)
                save_lora(path, self.lora, meta, self.text_lora)
            else:
                parts = {"backbone": m.backbone, "vae": m.vae, "text_encoder": m.text_encoder}
                if m.upscaler is not None:
                    parts["upscaler"] = m.upscaler
                save_checkpoint(path, m.config, parts, {"aiprod.steps": str(self.global_step)})
            self._plot()
        if self.world > 1:
            dist.barrier()
        return path
