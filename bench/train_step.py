"""Seconds per training step of the shipped model on the synthetic world, two settings side by side, as JSON.

One backbone step as `aiprod train` runs it (world clips, VAE encode, text encoder, backbone forward and
backward, AdamW), batch 8 at 64x64x17. The two settings alternate step by step in the trainer's own loop, so a
busy machine slows both alike; the ratio is the figure. The learning rate is tiny, so the weights barely move
between the steps compared.

- `--compare precision` (the phase of `research/recipes/tiny-pairs-gentle.json`): fp32 against bf16 autocast.
- `--compare pool` (the phase of `recipes/tiny-motion-more.json`): a new scene for every sample against scenes
  drawn from a pool whose latents are kept (`world_pool`); the pool is small, so that after the first steps
  every draw finds its latent, as most draws do in a long phase. `--bf16` runs both under bf16 autocast.

    python bench/train_step.py [--compare precision|pool] [--bf16] [--steps 12] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
POOL = 16  # scenes: warm after a few steps of batch 8
SETTINGS = {
    "precision": ("research/recipes/tiny-pairs-gentle.json", ("fp32_s", "bf16_autocast_s")),
    "pool": ("recipes/tiny-motion-more.json", ("new_scenes_s", "pooled_latents_s")),
}


def main() -> None:
    from aiprod_core.model import load_model
    from aiprod_core.train.options import RunOptions, TrainOptions
    from aiprod_core.train.phases import load_phases
    from aiprod_core.train.trainer import Trainer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", choices=sorted(SETTINGS), default="precision")
    p.add_argument("--bf16", action="store_true", help="--compare pool: both settings under bf16 autocast")
    p.add_argument("--steps", type=int, default=12, help="steps of each setting (the first two are warm-up)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe, names = SETTINGS[args.compare]
    phase = dataclasses.replace(load_phases(ROOT / recipe)[0], steps=2 * args.steps, lr=1e-9)
    times: dict[bool, list[float]] = {False: [], True: []}
    last = [0.0]
    second = [False]  # whether the next step runs the second setting

    def switch(on: bool) -> None:
        second[0] = on
        if args.compare == "precision":
            trainer.autocast = on
        else:
            phase.world_pool = POOL if on else 0
            trainer.autocast = args.bf16

    def on_step(_row: dict) -> None:  # the trainer's own loop; each step switches the setting of the next
        times[second[0]].append(time.perf_counter() - last[0])
        switch(not second[0])
        last[0] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        run = RunOptions(tmp, progress=False, validate=False, checkpoint_every=0, on_step=on_step)
        trainer = Trainer(load_model(), [phase], TrainOptions(run))
        switch(False)
        last[0] = time.perf_counter()
        trainer.run()
    med = {k: statistics.median(v[2:]) for k, v in times.items()}
    print(json.dumps({"bench": f"training step, {phase.name} phase, batch {phase.batch}, 64x64x17",
                      "threads": torch.get_num_threads(), "bf16_autocast": trainer.autocast, "steps": args.steps - 2, names[0]: round(med[False], 3),
                      names[1]: round(med[True], 3), "ratio": round(med[True] / med[False], 3)}, indent=1))


if __name__ == "__main__":
    main()
