"""Seconds per training step of the shipped model on the synthetic world, fp32 against bf16 autocast, as JSON.

One backbone step as `aiprod train` runs it (world clips, VAE encode, text encoder, backbone forward and
backward, AdamW) at the phase of `recipes/tiny-pairs-gentle.json` (batch 8, 64x64x17). The two settings
alternate step by step in the trainer's own loop, so a busy machine slows both alike; the ratio is the figure.
The learning rate is tiny, so the weights barely move between the steps compared.

    python bench/train_step.py [--steps 12] [--threads N]
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


def main() -> None:
    from aiprod_core.pipeline import load_model
    from aiprod_core.train.phases import load_phases
    from aiprod_core.train.trainer import Trainer, TrainOptions

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=12, help="steps of each setting (the first two are warm-up)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    phase = dataclasses.replace(load_phases(ROOT / "recipes" / "tiny-pairs-gentle.json")[0], steps=2 * args.steps, lr=1e-9)
    times: dict[bool, list[float]] = {False: [], True: []}
    last = [0.0]

    def on_step(_row: dict) -> None:  # the trainer's own loop; each step switches the setting of the next
        times[trainer.autocast].append(time.perf_counter() - last[0])
        trainer.autocast = not trainer.autocast
        last[0] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(load_model(), [phase], TrainOptions(out_dir=tmp, progress=False, validate=False,
                                                              checkpoint_every=0, on_step=on_step))
        trainer.autocast = False
        last[0] = time.perf_counter()
        trainer.run()
    med = {k: statistics.median(v[2:]) for k, v in times.items()}
    print(json.dumps({"bench": "training step, tiny-pairs-gentle phase, batch 8, 64x64x17", "threads": torch.get_num_threads(),
                      "steps": args.steps - 2, "fp32_s": round(med[False], 3), "bf16_autocast_s": round(med[True], 3),
                      "bf16_over_fp32": round(med[True] / med[False], 3)}, indent=1))


if __name__ == "__main__":
    main()
